//! AWS Bedrock Runtime's Converse and ConverseStream APIs, in pieces that do no I/O
//! but the credential lookup: the request body and URL ([`request`]), the answer as a
//! chat completion ([`answer`]), usage in tollgate's terms ([`usage`]), the binary
//! `application/vnd.amazon.eventstream` framing ([`eventstream`]), its events as
//! neutral stream events ([`stream`]), SigV4 or API-key authorization ([`sign`]), and
//! Titan's embeddings through InvokeModel ([`embed`]);
//! [`Bedrock`] joins them into the `bedrock` kind's adapter.

mod adapter;
pub mod answer;
pub mod embed;
pub mod eventstream;
pub mod request;
pub mod sign;
pub mod stream;
pub mod usage;

pub use adapter::Bedrock;
