//! Consul JSON in and out (placeholder until written).
