// The SDK's browser entry also loads its Greengrass discovery model, which requires Node's `util`
// for `isArray` only; esbuild maps `util` here (`--alias:util=./util-stub.js`).
module.exports = { isArray: Array.isArray };
