//! Pathway hashing: FNV-1 64 over service, env and the hashable edge tags (the node), then over
//! the node hash and the parent's pathway hash (the pathway). Plus a cache so that a repeated
//! checkpoint does not rehash.

use foldhash::fast::FixedState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::{Arc, RwLock};

const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// The keys whose tags take part in the node hash; other tags are reported but not hashed.
pub const HASHABLE_TAG_KEYS: [&str; 8] = [
    "direction",
    "event_type",
    "exchange",
    "group",
    "kafka_cluster_id",
    "segment_name",
    "topic",
    "type",
];

/// Incremental FNV-1 64 (multiply, then xor; not FNV-1a).
#[derive(Debug, Clone, Copy)]
pub struct Fnv1 {
    state: u64,
}

impl Default for Fnv1 {
    fn default() -> Self {
        Fnv1 {
            state: FNV_OFFSET_BASIS,
        }
    }
}

impl Fnv1 {
    /// A hasher at the offset basis.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes.
    #[inline]
    pub fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.state = self.state.wrapping_mul(FNV_PRIME) ^ u64::from(b);
        }
    }

    /// The hash of everything fed so far.
    pub fn finish(&self) -> u64 {
        self.state
    }
}

/// FNV-1 64 of `bytes`.
pub fn fnv1_64(bytes: &[u8]) -> u64 {
    let mut h = Fnv1::new();
    h.write(bytes);
    h.finish()
}

/// Whether `tag` takes part in the node hash: its key (the text before the first `:`) is one
/// of [`HASHABLE_TAG_KEYS`]. A tag without `:` is not hashable.
pub fn is_hashable_tag(tag: &str) -> bool {
    match tag.split_once(':') {
        Some((key, _)) => HASHABLE_TAG_KEYS.contains(&key),
        None => false,
    }
}

/// The node hash: FNV-1 64 of `service ‖ env ‖ hashable edge tags sorted bytewise ‖ process
/// tags` with no separators. Pass an empty `process_tags` unless process tags are hashed.
pub fn node_hash<S: AsRef<str>, P: AsRef<str>>(
    service: &str,
    env: &str,
    edge_tags: &[S],
    process_tags: &[P],
) -> u64 {
    let mut tags: Vec<&str> = edge_tags
        .iter()
        .map(AsRef::as_ref)
        .filter(|t| is_hashable_tag(t))
        .collect();
    tags.sort_unstable();
    let mut h = Fnv1::new();
    h.write(service.as_bytes());
    h.write(env.as_bytes());
    for t in tags {
        h.write(t.as_bytes());
    }
    for t in process_tags {
        h.write(t.as_ref().as_bytes());
    }
    h.finish()
}

/// The pathway hash: FNV-1 64 of `LE64(node_hash) ‖ LE64(parent_hash)`; the parent is 0 for a
/// new pathway.
pub fn pathway_hash(node_hash: u64, parent_hash: u64) -> u64 {
    let mut h = Fnv1::new();
    h.write(&node_hash.to_le_bytes());
    h.write(&parent_hash.to_le_bytes());
    h.finish()
}

/// What a stats point is aggregated under, apart from the bucket: service, pathway hash, parent
/// hash and the edge tags sorted. Built once per cache entry and shared with the aggregator.
#[derive(Debug)]
pub struct GroupKey {
    /// The service of the checkpoint.
    pub service: String,
    /// The pathway hash.
    pub hash: u64,
    /// The parent pathway hash.
    pub parent: u64,
    /// All edge tags (hashable or not), sorted bytewise.
    pub edge_tags: Vec<String>,
    /// A precomputed hash of the fields above, for map lookups.
    prehash: u64,
}

impl GroupKey {
    /// A key; `edge_tags` are sorted here.
    pub fn new(service: &str, hash: u64, parent: u64, edge_tags: &[&str]) -> Self {
        let mut tags: Vec<String> = edge_tags.iter().map(|t| (*t).to_owned()).collect();
        tags.sort_unstable();
        let mut h = FixedState::default().build_hasher();
        service.hash(&mut h);
        hash.hash(&mut h);
        parent.hash(&mut h);
        tags.hash(&mut h);
        GroupKey {
            service: service.to_owned(),
            hash,
            parent,
            edge_tags: tags,
            prehash: h.finish(),
        }
    }
}

impl PartialEq for GroupKey {
    fn eq(&self, other: &Self) -> bool {
        self.prehash == other.prehash
            && self.hash == other.hash
            && self.parent == other.parent
            && self.service == other.service
            && self.edge_tags == other.edge_tags
    }
}

impl Eq for GroupKey {}

impl Hash for GroupKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.prehash);
    }
}

/// The cached result of hashing one checkpoint's inputs.
#[derive(Debug, Clone)]
pub struct CachedHash {
    /// The pathway hash.
    pub hash: u64,
    /// The aggregation key (with the same hash).
    pub key: Arc<GroupKey>,
}

struct CacheEntry {
    service: String,
    env: String,
    edge_tags: Vec<String>,
    parent: u64,
    value: CachedHash,
}

impl CacheEntry {
    fn matches(&self, service: &str, env: &str, edge_tags: &[&str], parent: u64) -> bool {
        self.parent == parent
            && self.service == service
            && self.env == env
            && self.edge_tags.len() == edge_tags.len()
            && self.edge_tags.iter().zip(edge_tags).all(|(a, b)| a == b)
    }
}

/// Remembers pathway hashes by (service, env, edge tags as given, parent), so a repeated
/// checkpoint costs one fast hash of its inputs and a lookup instead of sorting and FNV.
///
/// Bounded: when `capacity` entries are held the cache is emptied and refilled (tag sets are
/// usually few; a workload with unbounded tag values gets no cache but correct hashes).
/// Process tags, when hashed, are fixed for the cache's life.
pub struct HashCache {
    map: RwLock<HashMap<u64, CacheEntry, FixedState>>,
    capacity: usize,
    process_tags: Vec<String>,
}

impl HashCache {
    /// The default capacity.
    pub const DEFAULT_CAPACITY: usize = 4096;

    /// An empty cache of `capacity` entries that appends `process_tags` to every node hash
    /// (empty: process tags not hashed).
    pub fn new(capacity: usize, process_tags: Vec<String>) -> Self {
        HashCache {
            map: RwLock::new(HashMap::default()),
            capacity: capacity.max(1),
            process_tags,
        }
    }

    fn fingerprint(service: &str, env: &str, edge_tags: &[&str], parent: u64) -> u64 {
        let mut h = FixedState::default().build_hasher();
        // `str::hash` writes a terminator, so ("ab","c") and ("a","bc") differ.
        service.hash(&mut h);
        env.hash(&mut h);
        for t in edge_tags {
            t.hash(&mut h);
        }
        h.write_u64(parent);
        h.finish()
    }

    /// The pathway hash and aggregation key of a checkpoint of `service`/`env` with
    /// `edge_tags` whose parent pathway hash is `parent`.
    pub fn get(&self, service: &str, env: &str, edge_tags: &[&str], parent: u64) -> CachedHash {
        self.with(service, env, edge_tags, parent, CachedHash::clone)
    }

    /// Like [`HashCache::get`] but lends the cached value to `f` (under the cache's read lock
    /// on a hit), sparing the reference-count traffic of a clone on the hot path. `f` must not
    /// use this cache.
    #[inline]
    pub fn with<R>(
        &self,
        service: &str,
        env: &str,
        edge_tags: &[&str],
        parent: u64,
        f: impl FnOnce(&CachedHash) -> R,
    ) -> R {
        let fp = Self::fingerprint(service, env, edge_tags, parent);
        if let Ok(map) = self.map.read() {
            if let Some(e) = map.get(&fp) {
                if e.matches(service, env, edge_tags, parent) {
                    return f(&e.value);
                }
                // A fingerprint collision: compute without caching.
                drop(map);
                return f(&self.compute(service, env, edge_tags, parent));
            }
        }
        let value = self.compute(service, env, edge_tags, parent);
        if let Ok(mut map) = self.map.write() {
            if map.len() >= self.capacity {
                map.clear();
            }
            map.entry(fp).or_insert_with(|| CacheEntry {
                service: service.to_owned(),
                env: env.to_owned(),
                edge_tags: edge_tags.iter().map(|t| (*t).to_owned()).collect(),
                parent,
                value: value.clone(),
            });
        }
        f(&value)
    }

    /// Hashes without the cache.
    pub fn compute(&self, service: &str, env: &str, edge_tags: &[&str], parent: u64) -> CachedHash {
        let node = node_hash(service, env, edge_tags, &self.process_tags);
        let hash = pathway_hash(node, parent);
        CachedHash {
            hash,
            key: Arc::new(GroupKey::new(service, hash, parent, edge_tags)),
        }
    }

    /// The number of cached entries.
    pub fn len(&self) -> usize {
        self.map.read().map(|m| m.len()).unwrap_or(0)
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONE: [&str; 0] = [];

    #[test]
    fn fnv1_known_values() {
        assert_eq!(fnv1_64(b""), 14695981039346656037);
        assert_eq!(fnv1_64(b"a"), 12638153115695167422);
        assert_eq!(fnv1_64(b"foobar"), 3750802935296928194);
    }

    #[test]
    fn hashable_tags() {
        assert!(is_hashable_tag("topic:orders"));
        assert!(is_hashable_tag("type:"));
        assert!(is_hashable_tag("direction:in:x"));
        assert!(!is_hashable_tag("partition:3"));
        assert!(!is_hashable_tag("topic"));
        assert!(!is_hashable_tag("Topic:orders"));
        assert!(!is_hashable_tag(""));
    }

    #[test]
    fn node_hash_ignores_order_and_unhashable_tags() {
        let a = node_hash(
            "svc-a",
            "prod",
            &["direction:out", "topic:orders", "type:kafka"],
            &NONE,
        );
        let b = node_hash(
            "svc-a",
            "prod",
            &["type:kafka", "partition:1", "topic:orders", "direction:out"],
            &NONE,
        );
        assert_eq!(a, 3785990311770418615);
        assert_eq!(a, b);
        assert_eq!(pathway_hash(a, 0), 12637414960767859789);
        // Equivalent to hashing the concatenation.
        assert_eq!(
            node_hash("svc-a", "prod", &NONE, &NONE),
            fnv1_64(b"svc-aprod")
        );
        // Process tags are appended after the edge tags.
        assert_eq!(
            node_hash("s", "e", &["type:x"], &["p:1"]),
            fnv1_64(b"setype:xp:1")
        );
    }

    #[test]
    fn cache_returns_same_as_compute_and_bounds_itself() {
        let c = HashCache::new(3, vec![]);
        let tags = ["type:kafka", "topic:t", "direction:in", "partition:0"];
        let first = c.get("svc", "env", &tags, 42);
        assert_eq!(c.len(), 1);
        let again = c.get("svc", "env", &tags, 42);
        assert_eq!(first.hash, again.hash);
        assert!(Arc::ptr_eq(&first.key, &again.key), "served from the cache");
        assert_eq!(
            first.hash,
            pathway_hash(node_hash("svc", "env", &tags, &NONE), 42)
        );
        assert_eq!(
            first.key.edge_tags,
            ["direction:in", "partition:0", "topic:t", "type:kafka"]
        );
        assert_eq!(first.key.parent, 42);
        // Different parent, env, service or order: different entries.
        assert_ne!(c.get("svc", "env", &tags, 43).hash, first.hash);
        assert_ne!(c.get("svc", "env2", &tags, 42).hash, first.hash);
        assert_eq!(c.len(), 3);
        let reordered = c.get(
            "svc",
            "env",
            &["partition:0", "direction:in", "topic:t", "type:kafka"],
            42,
        );
        assert_eq!(reordered.hash, first.hash);
        assert_eq!(
            *reordered.key, *first.key,
            "same group key whatever the order"
        );
        assert!(c.len() <= 3);
        // Service/env boundaries matter.
        assert_ne!(
            HashCache::fingerprint("ab", "c", &[], 0),
            HashCache::fingerprint("a", "bc", &[], 0)
        );
    }

    #[test]
    fn cache_hashes_process_tags_when_given() {
        let c = HashCache::new(16, vec!["entrypoint.name:app".into()]);
        let h = c.get("s", "e", &["type:x"], 0).hash;
        assert_eq!(
            h,
            pathway_hash(
                node_hash("s", "e", &["type:x"], &["entrypoint.name:app"]),
                0
            )
        );
        assert_ne!(h, pathway_hash(node_hash("s", "e", &["type:x"], &NONE), 0));
    }
}
