//! RateGuard as an Envoy Rate Limit Service.
