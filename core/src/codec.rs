//! Versioned encoding (placeholder until written).
