//! The custom-auth rules of AWS IoT Core, shared by the emulator and the probe (docs/custom-auth.md §2–§6).
//!
//! - [`credentials`]: where the authorizer name, signature and token travel (username, headers, query).
//! - [`endpoint`]: what a data endpoint's name says (legacy or ATS, whose chain it presents).
//! - [`documents`]: the AWS documents a user hands over (describe-authorizer, domain, endpoint), read.
//! - [`signature`]: RSA PKCS#1 v1.5 SHA-256 token signatures and the public keys that check them.
//! - [`event`]: the event the authorizer function receives.
//! - [`response`]: validation of what the function answers.
//! - [`policy`]: evaluation of the returned policy documents.
//! - [`topic`]: MQTT topic-filter matching.
//! - [`troubleshooting`]: the steps of AWS's troubleshooting page, as advice and findings name them.

pub mod credentials;
pub mod documents;
pub mod endpoint;
pub mod event;
pub mod permission;
pub mod policy;
pub mod response;
pub mod signature;
pub mod topic;
pub mod troubleshooting;
