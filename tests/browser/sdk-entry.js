// The AWS IoT Device SDK v2 for JavaScript, browser build, bundled for the page of
// tests/it/browser.rs with esbuild (no CDN): `window.awsiot` holds its `iot` and `mqtt` modules.
import { auth, iot, mqtt } from 'aws-iot-device-sdk-v2';
window.awsiot = { auth, iot, mqtt };
