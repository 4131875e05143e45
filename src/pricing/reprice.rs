//! What-if repricing (in progress).
