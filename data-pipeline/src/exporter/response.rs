//! What the agent answered to a trace payload.

use std::collections::HashMap;

/// The default key of `rate_by_service`, used when no (service, env) key matches.
pub const DEFAULT_RATE_KEY: &str = "service:,env:";

/// Sampling rates per (service, env), as the agent sends them in `rate_by_service`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RatesByService {
    rates: HashMap<String, f64>,
}

impl RatesByService {
    /// Parses the `rate_by_service` object of an agent response body. A body that is not JSON, or
    /// has no such object, gives no rates; entries whose value is not a number in `[0, 1]` are
    /// skipped.
    pub fn from_response_body(body: &[u8]) -> RatesByService {
        let Ok(serde_json::Value::Object(root)) = serde_json::from_slice::<serde_json::Value>(body)
        else {
            return RatesByService::default();
        };
        let Some(serde_json::Value::Object(rates)) = root.get("rate_by_service") else {
            return RatesByService::default();
        };
        RatesByService {
            rates: rates
                .iter()
                .filter_map(|(k, v)| {
                    let r = v.as_f64()?;
                    (0.0..=1.0).contains(&r).then(|| (k.clone(), r))
                })
                .collect(),
        }
    }

    /// The key the agent uses for (service, env).
    pub fn key(service: &str, env: &str) -> String {
        format!("service:{service},env:{env}")
    }

    /// The rate for (service, env), else the default key's, else `None`.
    pub fn get(&self, service: &str, env: &str) -> Option<f64> {
        self.rates
            .get(&Self::key(service, env))
            .or_else(|| self.rates.get(DEFAULT_RATE_KEY))
            .copied()
    }

    /// The rate of the default key, if sent.
    pub fn default_rate(&self) -> Option<f64> {
        self.rates.get(DEFAULT_RATE_KEY).copied()
    }

    /// The rate stored under exactly `key` (`service:S,env:E`).
    pub fn get_key(&self, key: &str) -> Option<f64> {
        self.rates.get(key).copied()
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.rates.len()
    }

    /// True when the agent sent no rates.
    pub fn is_empty(&self) -> bool {
        self.rates.is_empty()
    }

    /// Iterates over `(key, rate)` pairs in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, f64)> {
        self.rates.iter().map(|(k, v)| (k.as_str(), *v))
    }
}

/// The agent's answer to a delivered payload.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgentResponse {
    /// The HTTP status (2xx).
    pub status: u16,
    /// The raw response body (JSON for trace endpoints).
    pub body: Vec<u8>,
    /// The sampling rates parsed from the body.
    pub rate_by_service: RatesByService,
}

impl AgentResponse {
    /// Builds a response from its status and body, parsing the rates.
    pub fn new(status: u16, body: Vec<u8>) -> AgentResponse {
        let rate_by_service = RatesByService::from_response_body(&body);
        AgentResponse {
            status,
            body,
            rate_by_service,
        }
    }

    /// The sampling rate for (service, env), falling back to the default key.
    pub fn rate(&self, service: &str, env: &str) -> Option<f64> {
        self.rate_by_service.get(service, env)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_lookup_with_default() {
        let r = AgentResponse::new(
            200,
            br#"{"rate_by_service": {"service:web,env:prod": 0.5, "service:,env:": 1.0, "service:x,env:": 2.0, "service:y,env:": "a"}}"#.to_vec(),
        );
        assert_eq!(r.rate("web", "prod"), Some(0.5));
        assert_eq!(r.rate("web", "staging"), Some(1.0));
        assert_eq!(r.rate("x", ""), Some(1.0), "out-of-range rate skipped");
        assert_eq!(r.rate_by_service.len(), 2);
        assert_eq!(r.rate_by_service.default_rate(), Some(1.0));
        assert_eq!(r.rate_by_service.get_key("service:web,env:prod"), Some(0.5));

        let none =
            RatesByService::from_response_body(br#"{"rate_by_service": {"service:a,env:b": 0.1}}"#);
        assert_eq!(none.get("a", "b"), Some(0.1));
        assert_eq!(none.get("a", "c"), None);
        assert!(RatesByService::from_response_body(b"OK").is_empty());
        assert!(RatesByService::from_response_body(b"[1]").is_empty());
        assert!(RatesByService::from_response_body(br#"{"rate_by_service": 3}"#).is_empty());
    }
}
