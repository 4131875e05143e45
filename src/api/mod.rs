//! The public wire contract with apps: OpenAI-shaped request views and error bodies.

pub mod anthropic;
pub mod embeddings;
pub mod error;
pub mod openai;
pub mod responses;
