//! Integration tests: one binary, a module per area (see `it/`).

// Helpers are `pub` so sibling test modules can use them; nothing here is a public API.
#![allow(unreachable_pub)]

mod it;
