//! The embedded demo (placeholder until the assets are generated).
