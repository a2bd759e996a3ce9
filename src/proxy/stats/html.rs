//! The HTML stats page (placeholder while being written).
