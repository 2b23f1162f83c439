//! Weighted Maglev consistent hashing (Eisenbud et al., "Maglev: A Fast and
//! Reliable Software Network Load Balancer", NSDI 2016, section 3.4).
//!
//! The table is a pure function of the *set* of backends so that every load
//! balancer in a fleet, and every restart of one, sends a flow that misses the
//! flow table to the same real without any coordination. That one property
//! drives most of the choices below: backends are sorted by identity, the
//! identity hash is implemented here rather than borrowed from a crate or std,
//! and a golden test pins the output bit for bit.
//!
//! # What Maglev does and does not promise on removal
//!
//! Removing a backend always hands all of its slots to the survivors, but
//! Maglev also moves some slots *between* survivors: once a survivor's turn
//! lands on a slot the removed backend used to win, it takes that slot
//! instead of the one it took before, which is then free for someone else,
//! and the change cascades through the rest of the fill. The tests measure
//! it: at 65 537 slots, 0.02% of the survivors' slots for 3 backends, 0.3%
//! for 10, 0.6-0.7% for 100 or 1000 (see
//! `removal_disrupts_few_surviving_slots`).
//!
//! Getting that to zero while staying a pure function of the set is not a
//! matter of tuning. If taking any one backend out of any set never moves
//! another's slot, then for each slot the winner of a set also wins every
//! subset that still contains it, and that forces each slot to rank every
//! possible backend in one fixed order and take the best one present: the
//! scheme is rendezvous (HRW) hashing, one ranking per slot. Its balance is
//! then whatever the rankings give, and with hashed rankings each share is
//! binomial: measured at 65 537 slots, the worst backend is off by 2%
//! (median over random sets) with 10 backends and 12% with 100, against
//! the 1% we need. We know of no family of 65 537 rankings that is balanced
//! to 1% for every set of IP:port identities, so we keep faithful Maglev,
//! whose shares are exact to a slot or two, and accept the small movement;
//! flows already in the data plane's flow table keep their real anyway.

use anyhow::{Result, bail, ensure};

/// One destination to place in the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backend {
    /// Stable identity bytes (the daemon passes the real's IP address octets
    /// followed by its port, big-endian). Offsets/skips derive ONLY from
    /// this, never from ids or ordering.
    pub identity: Vec<u8>,
    /// Value written into the table slots this backend owns (a real id,
    /// never 0).
    pub id: u32,
    /// Relative weight, 0..=65535. Weight 0 = gets no slots.
    pub weight: u32,
}

/// Default number of slots per service table: the prime the paper uses.
/// Large enough that up to ~650 equally weighted backends get 100 slots each
/// (a share accurate to 1%), small enough that a table is 256 KiB.
pub const DEFAULT_TABLE_SIZE: u32 = 65_537;

/// Largest accepted weight. Keeping weights within 16 bits keeps every credit
/// below 2^17, so the weighting arithmetic cannot overflow a `u32`.
pub const MAX_WEIGHT: u32 = 65_535;

/// True if n is prime.
pub fn is_prime(n: u32) -> bool {
    if n < 2 {
        return false;
    }
    if n.is_multiple_of(2) {
        return n == 2;
    }
    // Trial division is plenty: the table size is checked once per rebuild
    // and sqrt(u32::MAX) < 65 536. u64 so that `d * d` cannot overflow near
    // the top of the u32 range.
    let n = u64::from(n);
    let mut d = 3u64;
    while d * d <= n {
        if n.is_multiple_of(d) {
            return false;
        }
        d += 2;
    }
    true
}

/// Builds the lookup table of `table_size` entries (must be prime; return Err
/// otherwise, and Err if table_size < number of backends with weight>0).
/// Every entry holds a backend id; if no backend has weight > 0 the table is
/// all zeros (0 = "no real").
/// The result must be a pure function of the SET of backends: input order
/// must not matter (sort internally by identity; duplicate identities -> Err).
///
/// # Errors
///
/// Besides the cases above: a backend with id 0 (indistinguishable from an
/// empty slot) or with a weight above [`MAX_WEIGHT`].
pub fn build_table(backends: &[Backend], table_size: u32) -> Result<Vec<u32>> {
    // Prime, so that every skip in 1..M is coprime with M and each backend's
    // preference list is a full permutation of the slots: the search for a
    // free slot below always ends.
    ensure!(
        is_prime(table_size),
        "Maglev table size {table_size} is not prime"
    );

    // Sorting makes the fill order, the one thing besides the hashes that
    // decides ties, a function of the set rather than of the caller's order.
    let mut sorted: Vec<&Backend> = backends.iter().collect();
    sorted.sort_unstable_by(|a, b| a.identity.cmp(&b.identity));
    for pair in sorted.windows(2) {
        if pair[0].identity == pair[1].identity {
            bail!(
                "duplicate Maglev backend identity {:02x?} (ids {} and {})",
                pair[0].identity,
                pair[0].id,
                pair[1].id
            );
        }
    }
    for b in &sorted {
        // Id 0 is what the data plane reads as "no real", and the fill below
        // uses it to mark free slots; a backend with id 0 would be invisible.
        ensure!(b.id != 0, "Maglev backend id 0 is reserved for \"no real\"");
        ensure!(
            b.weight <= MAX_WEIGHT,
            "Maglev backend {} has weight {} (max {MAX_WEIGHT})",
            b.id,
            b.weight
        );
    }

    let mut cursors: Vec<Cursor> = sorted
        .iter()
        .filter(|b| b.weight > 0)
        .map(|b| Cursor::new(b, table_size))
        .collect();
    ensure!(
        cursors.len() <= table_size as usize,
        "{} weighted Maglev backends do not fit in {table_size} slots",
        cursors.len()
    );

    let Some(max_weight) = cursors.iter().map(|c| c.weight).max() else {
        return Ok(vec![0u32; table_size as usize]);
    };
    // Start every credit one weight short of a turn, so that the first round
    // gives each backend exactly one slot. That is what lets us promise a
    // slot to every backend with weight > 0 (hence the size check above),
    // however small its weight; afterwards it rounds each share up rather
    // than down, which moves a share by at most one slot.
    for c in &mut cursors {
        c.credit = max_weight - c.weight;
    }

    // The paper's population loop, with turns rationed by weight: each round
    // every backend earns its weight in credit and takes one slot per
    // `max_weight` of credit, so after R rounds it holds about
    // R * weight / max_weight slots and shares come out proportional to the
    // weights to within a slot or two. A backend with the largest weight
    // takes a slot every round, which is what guarantees progress. Only the
    // weight ratios matter: scaling every weight by the same factor gives the
    // same table. Walking every backend every round costs O(rounds * N),
    // which only grows when one weight dwarfs the rest (one backend at 65535
    // and 999 at 1: about 0.1 s in release, against about a millisecond for
    // equal weights); rebuilds happen on configuration changes, so the
    // simple loop wins.
    let mut fill = Fill::new(table_size);
    loop {
        for c in &mut cursors {
            c.credit += c.weight;
            // weight <= max_weight and credit < max_weight after a turn, so
            // a backend never earns two slots in one round.
            if c.credit < max_weight {
                continue;
            }
            c.credit -= max_weight;
            if fill.take_turn(c) {
                return Ok(fill.table);
            }
        }
    }
}

/// Probes per step of a preference list: the next `LANES` positions are
/// checked together and the first free one taken. In the middle of the fill
/// whether the next slot is free is a coin toss that the branch predictor
/// loses once per slot; one branch per `LANES` probes loses far less often
/// (4 measured fastest: 10-15% off a 65,537-slot build).
const LANES: usize = 4;

/// The table being filled, and how each turn finds its slot.
///
/// A turn takes the first free slot of the backend's preference list from
/// where its last turn stopped. Probing the list slot by slot costs about
/// `M ln M` probes for the whole table, about half of them in the last
/// `sqrt(M)` turns, when nearly every probe hits a taken slot. So once only
/// `sqrt(M)` slots are free, a turn instead looks at each free slot `s` and
/// asks how far down the backend's list it is: `s = pos + k * skip (mod M)`
/// gives `k = (s - pos) * skip⁻¹ (mod M)`, and the free slot with the
/// smallest `k` is exactly the one probing would have stopped at. That
/// costs one step per free slot (at most `sqrt(M)`) instead of `M / free`
/// probes on average. Together with [`LANES`], a build of 65,537 slots
/// takes about a quarter less time; the table is the same, slot for slot.
struct Fill {
    table: Vec<u32>,
    table_size: u32,
    /// Slots still empty.
    empty: usize,
    /// When `empty` reaches this, turns switch to `free`.
    free_list_from: usize,
    /// The empty slots, once there are `free_list_from` of them.
    free: Vec<u32>,
    /// `(2^64 - 1) / table_size`, for Barrett reduction in the free-slot
    /// search: a multiply instead of a division per free slot.
    reciprocal: u64,
}

impl Fill {
    fn new(table_size: u32) -> Self {
        Self {
            table: vec![0; table_size as usize],
            table_size,
            empty: table_size as usize,
            free_list_from: table_size.isqrt() as usize,
            free: Vec::new(),
            reciprocal: u64::MAX / u64::from(table_size),
        }
    }

    /// Gives `c` its next slot; true once the table is full.
    fn take_turn(&mut self, c: &mut Cursor) -> bool {
        let slot = if self.empty <= self.free_list_from {
            self.take_nearest_free(c)
        } else {
            self.probe(c)
        };
        self.table[slot as usize] = c.id;
        c.pos = slot;
        c.advance(self.table_size);
        self.empty -= 1;
        if self.empty == self.free_list_from {
            self.free = self.empty_slots();
        }
        self.empty == 0
    }

    /// The empty slots, in order. Only `sqrt(M)` of the `M` are empty by
    /// now, so blocks without one are skipped with a check the compiler
    /// vectorises, instead of a branch per slot.
    fn empty_slots(&self) -> Vec<u32> {
        const BLOCK: usize = 64;
        let mut free = Vec::with_capacity(self.empty);
        for (block, slots) in self.table.chunks(BLOCK).enumerate() {
            if slots.iter().fold(u32::MAX, |min, &id| min.min(id)) != 0 {
                continue;
            }
            let first = (block * BLOCK) as u32;
            free.extend(
                (first..)
                    .zip(slots)
                    .filter(|&(_, &id)| id == 0)
                    .map(|(slot, _)| slot),
            );
        }
        free
    }

    /// The first empty slot of `c`'s list from `c.pos`, [`LANES`] at a time.
    fn probe(&self, c: &Cursor) -> u32 {
        let mut lanes = [c.pos; LANES];
        for lane in 1..LANES {
            lanes[lane] = c.step(lanes[lane - 1], 1, self.table_size);
        }
        loop {
            let mut empty = 0u32;
            for (lane, &slot) in lanes.iter().enumerate() {
                empty |= u32::from(self.table[slot as usize] == 0) << lane;
            }
            if empty != 0 {
                return lanes[empty.trailing_zeros() as usize];
            }
            for slot in &mut lanes {
                *slot = c.step(*slot, LANES, self.table_size);
            }
        }
    }

    /// The free slot fewest steps down `c`'s list from `c.pos`, taken off
    /// the free list.
    fn take_nearest_free(&mut self, c: &Cursor) -> u32 {
        let m = u64::from(self.table_size);
        let pos = u64::from(c.pos);
        let inverse = u64::from(c.skip_inverse);
        let mut nearest = (u64::MAX, 0);
        for (index, &slot) in self.free.iter().enumerate() {
            let behind = if u64::from(slot) >= pos {
                u64::from(slot) - pos
            } else {
                u64::from(slot) + m - pos
            };
            // < M^2 < 2^64, and Barrett's quotient is at most two short.
            let product = behind * inverse;
            let quotient = ((u128::from(product) * u128::from(self.reciprocal)) >> 64) as u64;
            let mut steps = product - quotient * m;
            while steps >= m {
                steps -= m;
            }
            if steps < nearest.0 {
                nearest = (steps, index);
            }
        }
        self.free.swap_remove(nearest.1)
    }
}

/// Where one backend is in its preference list.
///
/// The paper materialises `permutation[i][j] = (offset + j * skip) % M` for
/// every backend, which is M * N entries (256 MiB for 1000 backends at the
/// default size). Each backend only ever reads its list front to back, so
/// keeping the current position and stepping by `skip` produces the same
/// sequence in O(N) memory.
struct Cursor {
    id: u32,
    weight: u32,
    credit: u32,
    /// `permutation[next]` in the paper's terms: the next slot to try.
    pos: u32,
    /// `strides[n - 1] = n * skip % M`, for n up to [`LANES`].
    strides: [u32; LANES],
    /// `skip⁻¹ mod M` (M is prime): how many steps away a slot is.
    skip_inverse: u32,
}

impl Cursor {
    fn new(backend: &Backend, table_size: u32) -> Self {
        // Two hashes under different fixed seeds stand in for the paper's
        // h1 and h2, so that offset and skip are independent of each other.
        // Reduced in u64 so that all 64 bits of the hash take part.
        let m = u64::from(table_size);
        let offset = identity_hash(&backend.identity, OFFSET_SEED) % m;
        let skip = identity_hash(&backend.identity, SKIP_SEED) % (m - 1) + 1;
        // All below table_size, a u32.
        let strides = std::array::from_fn(|n| ((n as u64 + 1) * skip % m) as u32);
        Cursor {
            id: backend.id,
            weight: backend.weight,
            credit: 0,
            pos: offset as u32,
            strides,
            skip_inverse: modular_inverse(skip as u32, table_size),
        }
    }

    /// pos = (pos + skip) % table_size.
    fn advance(&mut self, table_size: u32) {
        self.pos = self.step(self.pos, 1, table_size);
    }

    /// `slot` moved `steps` (1..=LANES) down the list: (slot + steps * skip)
    /// % table_size, written so that it cannot overflow even for table sizes
    /// close to u32::MAX, and without a division.
    fn step(&self, slot: u32, steps: usize, table_size: u32) -> u32 {
        let stride = self.strides[steps - 1];
        let room = table_size - stride;
        if slot >= room {
            slot - room
        } else {
            slot + stride
        }
    }
}

/// `a⁻¹ mod m` for `a` coprime with `m` (extended Euclid).
fn modular_inverse(a: u32, m: u32) -> u32 {
    let (mut r, mut next_r) = (i64::from(m), i64::from(a));
    let (mut t, mut next_t) = (0i64, 1i64);
    while next_r != 0 {
        let q = r / next_r;
        (r, next_r) = (next_r, r - q * next_r);
        (t, next_t) = (next_t, t - q * next_t);
    }
    // |t| < m, so the result fits.
    t.rem_euclid(i64::from(m)) as u32
}

// Fixed seeds for the identity hash (arbitrary, but never to be changed:
// doing so reshuffles every table on the next rebuild).
const OFFSET_SEED: u64 = 0x6d61_676c_6576_5f31; // "maglev_1"
const SKIP_SEED: u64 = 0x6d61_676c_6576_5f32; // "maglev_2"

/// The h1/h2 of the paper: FNV-1a over the identity, finished with murmur3's
/// fmix64.
///
/// Written out here rather than taken from std or a crate because the table
/// must not change when a toolchain or dependency does: std's `DefaultHasher`
/// is explicitly unstable across releases, and two load balancers running
/// different builds must still agree on every slot. FNV-1a alone ends with a
/// single multiply, so identities that differ only in their last byte (ports
/// 8080 and 8081 of one host) get hashes that differ by a small multiple of
/// the FNV prime, which would make their offsets and skips correlated;
/// fmix64's full avalanche on top removes that structure. This is not meant to resist chosen
/// identities; the operator picks them.
fn identity_hash(identity: &[u8], seed: u64) -> u64 {
    const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = FNV_OFFSET_BASIS ^ fmix64(seed);
    for &byte in identity {
        h ^= u64::from(byte);
        h = h.wrapping_mul(FNV_PRIME);
    }
    fmix64(h ^ identity.len() as u64)
}

/// murmur3's 64-bit finaliser.
const fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// IPv4 address octets then the port, big-endian: what the daemon passes.
    fn v4(a: [u8; 4], port: u16) -> Vec<u8> {
        let mut v = a.to_vec();
        v.extend_from_slice(&port.to_be_bytes());
        v
    }

    fn v6(segments: [u16; 8], port: u16) -> Vec<u8> {
        let mut v: Vec<u8> = segments.iter().flat_map(|s| s.to_be_bytes()).collect();
        v.extend_from_slice(&port.to_be_bytes());
        v
    }

    /// `n` backends 10.x.y.z:8080 with ids 1..=n and the given weights.
    fn backends(n: u32, weight: impl Fn(u32) -> u32) -> Vec<Backend> {
        (0..n)
            .map(|i| Backend {
                identity: v4([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], 8080),
                id: i + 1,
                weight: weight(i),
            })
            .collect()
    }

    fn fnv1a64(table: &[u32]) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in table.iter().flat_map(|v| v.to_le_bytes()) {
            h ^= u64::from(byte);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h
    }

    fn counts(table: &[u32]) -> HashMap<u32, usize> {
        let mut c = HashMap::new();
        for &id in table {
            *c.entry(id).or_insert(0) += 1;
        }
        c
    }

    /// Deterministic Fisher-Yates with splitmix64, so a failure reproduces.
    fn shuffle<T>(v: &mut [T], mut seed: u64) {
        for i in (1..v.len()).rev() {
            seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = seed;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            v.swap(i, (z % (i as u64 + 1)) as usize);
        }
    }

    /// Among the slots `before` gave to someone other than `removed`: how
    /// many `after` gives to someone else, and how many there were.
    fn survivors_moved(before: &[u32], after: &[u32], removed: u32) -> (usize, usize) {
        let mut kept = 0;
        let mut moved = 0;
        for (b, a) in before.iter().zip(after) {
            if *b != removed {
                kept += 1;
                if a != b {
                    moved += 1;
                }
            }
        }
        (moved, kept)
    }

    #[test]
    fn primes() {
        let primes: Vec<u32> = (0..60).filter(|&n| is_prime(n)).collect();
        assert_eq!(
            primes,
            [
                2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59
            ]
        );
        assert!(is_prime(DEFAULT_TABLE_SIZE));
        assert!(is_prime(655_373));
        assert!(!is_prime(65_536));
        assert!(!is_prime(65_539 * 3));
        assert!(is_prime(4_294_967_291)); // the largest u32 prime
        assert!(!is_prime(u32::MAX));
        assert!(!is_prime(65_521 * 65_521)); // square of a prime near the top
    }

    #[test]
    fn identity_hash_is_pinned() {
        // The table's stability across builds rests on this function; pin it
        // separately so a change is reported at its source.
        // Values cross-checked against an independent Python implementation.
        assert_eq!(identity_hash(&[], 0), 17_280_346_270_528_514_342);
        let id = v4([10, 0, 0, 1], 80);
        assert_eq!(identity_hash(&id, OFFSET_SEED), 13_656_429_985_986_263_611);
        assert_eq!(identity_hash(&id, SKIP_SEED), 17_277_700_184_884_852_223);
    }

    /// The fill as the paper writes it: every turn probes its backend's
    /// list slot by slot. `build_table`'s shortcuts must not change a slot.
    fn probing_slot_by_slot(backends: &[Backend], table_size: u32) -> Vec<u32> {
        let m = u64::from(table_size);
        let mut sorted: Vec<&Backend> = backends.iter().filter(|b| b.weight > 0).collect();
        sorted.sort_by(|a, b| a.identity.cmp(&b.identity));
        let max_weight = sorted.iter().map(|b| b.weight).max().unwrap_or(0);
        // (id, weight, credit, pos, skip)
        let mut lists: Vec<(u32, u32, u32, u64, u64)> = sorted
            .iter()
            .map(|b| {
                let offset = identity_hash(&b.identity, OFFSET_SEED) % m;
                let skip = identity_hash(&b.identity, SKIP_SEED) % (m - 1) + 1;
                (b.id, b.weight, max_weight - b.weight, offset, skip)
            })
            .collect();
        let mut table = vec![0u32; table_size as usize];
        let mut filled = 0;
        while !lists.is_empty() && filled < table.len() {
            for (id, weight, credit, pos, skip) in &mut lists {
                *credit += *weight;
                if *credit < max_weight || filled == table.len() {
                    continue;
                }
                *credit -= max_weight;
                while table[*pos as usize] != 0 {
                    *pos = (*pos + *skip) % m;
                }
                table[*pos as usize] = *id;
                *pos = (*pos + *skip) % m;
                filled += 1;
            }
        }
        table
    }

    #[test]
    fn same_table_as_probing_slot_by_slot() {
        type Weighting = (&'static str, fn(u32) -> u32);
        let weightings: [Weighting; 4] = [
            ("equal", |_| 1),
            ("mixed", |i| i % 7 + 1),
            ("with zeros", |i| i % 3),
            ("one heavy", |i| if i == 0 { 500 } else { 1 }),
        ];
        for table_size in [2, 3, 5, 13, 251, 1021, DEFAULT_TABLE_SIZE] {
            for n in [1, 2, 3, 10, 100, 1000] {
                if n > table_size {
                    continue;
                }
                for (name, weight) in weightings {
                    let set = backends(n, weight);
                    assert_eq!(
                        build_table(&set, table_size).unwrap(),
                        probing_slot_by_slot(&set, table_size),
                        "{n} backends, {name} weights, {table_size} slots"
                    );
                }
            }
        }
        let v6_set: Vec<Backend> = (0..50)
            .map(|i| Backend {
                identity: v6([0xfd00, 0, 0, 0, 0, 0, 0, i], 443),
                id: u32::from(i) + 1,
                weight: u32::from(i % 4) + 1,
            })
            .collect();
        assert_eq!(
            build_table(&v6_set, DEFAULT_TABLE_SIZE).unwrap(),
            probing_slot_by_slot(&v6_set, DEFAULT_TABLE_SIZE)
        );
    }

    #[test]
    fn modular_inverse_inverts() {
        for m in [2u32, 3, 13, 65_537, 4_294_967_291] {
            for a in [1, 2, m / 2, m - 2, m - 1] {
                if a == 0 || a >= m {
                    continue;
                }
                let inverse = modular_inverse(a, m);
                assert!(inverse < m);
                assert_eq!(
                    u64::from(a) * u64::from(inverse) % u64::from(m),
                    1,
                    "{a} mod {m}"
                );
            }
        }
    }

    #[test]
    fn golden_fingerprint() {
        let mut set = backends(10, |i| i + 1);
        set.push(Backend {
            identity: v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1], 443),
            id: 100,
            weight: 7,
        });
        let table = build_table(&set, DEFAULT_TABLE_SIZE).unwrap();
        assert_eq!(table.len(), DEFAULT_TABLE_SIZE as usize);
        // Recorded once and cross-checked against an independent Python
        // implementation of the same algorithm. If this changes, every LB
        // running the old build disagrees with the new one on some slots.
        assert_eq!(fnv1a64(&table), 60_741_356_650_349_464);

        let small = build_table(&backends(3, |_| 1), 13).unwrap();
        assert_eq!(small, [2, 3, 2, 1, 2, 1, 3, 1, 1, 2, 3, 1, 3]);
    }

    #[test]
    fn input_order_does_not_matter() {
        let set = backends(50, |i| i % 7 + 1);
        let reference = build_table(&set, DEFAULT_TABLE_SIZE).unwrap();
        let mut reversed = set.clone();
        reversed.reverse();
        assert_eq!(
            build_table(&reversed, DEFAULT_TABLE_SIZE).unwrap(),
            reference
        );
        for seed in 0..5 {
            let mut shuffled = set.clone();
            shuffle(&mut shuffled, seed);
            assert_ne!(shuffled, set);
            assert_eq!(
                build_table(&shuffled, DEFAULT_TABLE_SIZE).unwrap(),
                reference
            );
        }
        // And again from scratch: nothing is cached between builds.
        assert_eq!(build_table(&set, DEFAULT_TABLE_SIZE).unwrap(), reference);
    }

    /// Every backend's share of the slots is within `tolerance` (relative)
    /// of its share of the total weight.
    fn assert_balanced(set: &[Backend], table_size: u32, tolerance: f64) {
        let table = build_table(set, table_size).unwrap();
        let got = counts(&table);
        let total_weight: u32 = set.iter().map(|b| b.weight).sum();
        let mut worst = 0.0f64;
        for b in set {
            let want = f64::from(table_size) * f64::from(b.weight) / f64::from(total_weight);
            let have = got.get(&b.id).copied().unwrap_or(0) as f64;
            let err = (have - want).abs() / want;
            worst = worst.max(err);
            assert!(
                err <= tolerance,
                "backend {} (weight {}): {have} slots, want {want:.1} ({:.3}% off)",
                b.id,
                b.weight,
                err * 100.0
            );
        }
        assert_eq!(got.len(), set.len(), "a slot went to an unknown id");
        eprintln!(
            "n={} M={table_size}: worst share error {:.4}%",
            set.len(),
            worst * 100.0
        );
    }

    #[test]
    fn equal_weights_are_balanced() {
        // 655 is the M/N >= 100 edge: shares are 100 or 101 slots against an
        // ideal of 100.06, so one slot is just under 1%.
        for n in [1, 2, 3, 10, 100, 655] {
            assert_balanced(&backends(n, |_| 1), DEFAULT_TABLE_SIZE, 0.01);
        }
        assert_balanced(&backends(1000, |_| 100), 655_373, 0.01);
    }

    #[test]
    fn mixed_weights_are_balanced() {
        // Each case keeps the smallest expected share above ~260 slots, where
        // the scheme's error of a slot or two is well inside 1%.
        assert_balanced(&backends(10, |i| i + 1), DEFAULT_TABLE_SIZE, 0.01);
        assert_balanced(&backends(50, |i| i % 5 + 1), DEFAULT_TABLE_SIZE, 0.01);
        assert_balanced(&backends(100, |i| i % 4 + 1), DEFAULT_TABLE_SIZE, 0.01);
        assert_balanced(&backends(100, |i| i + 1), 655_373, 0.01);
        assert_balanced(
            &backends(20, |i| [65_535, 30_000, 12_345][i as usize % 3]),
            DEFAULT_TABLE_SIZE,
            0.01,
        );
    }

    #[test]
    fn only_weight_ratios_matter() {
        let small = backends(10, |i| i % 3 + 1);
        let large = backends(10, |i| (i % 3 + 1) * 1000);
        assert_eq!(
            build_table(&small, DEFAULT_TABLE_SIZE).unwrap(),
            build_table(&large, DEFAULT_TABLE_SIZE).unwrap()
        );
    }

    #[test]
    fn every_weighted_backend_gets_a_slot() {
        // One backend at the weight limit and many at weight 1: the light ones
        // would round down to nothing without the first-round slot.
        let mut set = backends(200, |_| 1);
        set[0].weight = MAX_WEIGHT;
        let got = counts(&build_table(&set, 251).unwrap());
        assert!(set.iter().all(|b| got.contains_key(&b.id)));
        // Exactly as many slots as backends: one each.
        let set = backends(13, |i| i * 1000 + 1);
        let got = counts(&build_table(&set, 13).unwrap());
        assert!(got.values().all(|&c| c == 1), "{got:?}");
    }

    #[test]
    fn removal_disrupts_few_surviving_slots() {
        // Maglev does not promise that survivors keep all their slots (see
        // the module docs for why no pure function of the set can, at this
        // table size, while staying balanced). Measured at M = 65 537, as the
        // share of the survivors' slots that change owner, mean / worst over
        // up to 50 single removals per set (equal weights unless noted):
        //   N=2     0%      / 0%
        //   N=3     0.018%  / 0.021%
        //   N=5     0.10%   / 0.13%
        //   N=10    0.25%   / 0.34%   (weights 1..4: 0.26% / 0.43%)
        //   N=30    0.38%   / 0.45%
        //   N=100   0.59%   / 0.68%   (weights 1..4: 0.55% / 0.72%)
        //   N=300   0.84%   / 0.90%
        //   N=1000  0.60%   / 0.64%
        // The count of moved survivor slots levels off at a few hundred, so
        // for large N it exceeds the removed backend's own share (about 6x at
        // N=1000). At M = 655 373 the same worst cases are 0.006%, 0.20%,
        // 0.15% and 0.34% for N = 3, 10, 100, 1000. The bounds below sit
        // about 1.5x above the worst seen, so that a change which makes
        // removals noticeably more disruptive fails here; the table is a pure
        // function of the set, so these numbers do not vary between runs.
        // (backends, weight of backend i, bound on the moved fraction)
        type Case = (u32, fn(u32) -> u32, f64);
        let cases: [Case; 6] = [
            (3, |_| 1, 0.0005),
            (10, |_| 1, 0.005),
            (10, |i| i % 4 + 1, 0.0065),
            (100, |_| 1, 0.01),
            (100, |i| i % 4 + 1, 0.011),
            (1000, |_| 1, 0.01),
        ];
        for (n, weight, bound) in cases {
            let set = backends(n, weight);
            let before = build_table(&set, DEFAULT_TABLE_SIZE).unwrap();
            let mut worst = 0.0f64;
            // Removing the first ten is representative (identities, and so
            // offsets and skips, are unrelated to position) and keeps the
            // test fast in debug builds.
            for victim in 0..(n as usize).min(10) {
                let removed = set[victim].id;
                let mut rest = set.clone();
                rest.remove(victim);
                let after = build_table(&rest, DEFAULT_TABLE_SIZE).unwrap();
                // Every slot the removed backend owned now belongs to a
                // survivor: it is gone and no slot was left empty.
                assert!(before.contains(&removed));
                assert!(!after.contains(&removed));
                assert!(!after.contains(&0));
                let (moved, kept) = survivors_moved(&before, &after, removed);
                let frac = moved as f64 / kept as f64;
                worst = worst.max(frac);
                assert!(
                    frac <= bound,
                    "N={n}: removing {removed} moved {moved} of {kept} surviving slots ({:.4}%, bound {:.4}%)",
                    frac * 100.0,
                    bound * 100.0
                );
            }
            eprintln!(
                "N={n}: worst {:.4}% of surviving slots moved (bound {:.4}%)",
                worst * 100.0,
                bound * 100.0
            );
        }
    }

    #[test]
    fn weight_zero_and_errors() {
        let mut set = backends(10, |_| 5);
        set[3].weight = 0;
        let table = build_table(&set, DEFAULT_TABLE_SIZE).unwrap();
        assert!(!table.contains(&set[3].id));
        assert!(!table.contains(&0));

        // A weight-0 backend does not perturb anyone else's slots either.
        let mut without = set.clone();
        without.remove(3);
        assert_eq!(build_table(&without, DEFAULT_TABLE_SIZE).unwrap(), table);

        let zeros = backends(10, |_| 0);
        assert_eq!(
            build_table(&zeros, DEFAULT_TABLE_SIZE).unwrap(),
            vec![0; 65_537]
        );
        assert_eq!(build_table(&[], 7).unwrap(), vec![0; 7]);

        assert!(build_table(&set, 65_536).is_err());
        assert!(build_table(&set, 1).is_err());
        assert!(build_table(&set, 0).is_err());
        assert!(build_table(&[], 9).is_err());

        // More weighted backends than slots, but weight-0 ones do not count.
        assert!(build_table(&backends(12, |_| 1), 11).is_err());
        let mut eleven = backends(12, |_| 1);
        eleven[0].weight = 0;
        assert!(build_table(&eleven, 11).is_ok());

        let mut dup = backends(5, |_| 1);
        dup[4].identity = dup[1].identity.clone();
        dup[4].weight = 0; // even a weight-0 duplicate is a config error
        assert!(build_table(&dup, DEFAULT_TABLE_SIZE).is_err());

        let mut zero_id = backends(5, |_| 1);
        zero_id[2].id = 0;
        assert!(build_table(&zero_id, DEFAULT_TABLE_SIZE).is_err());

        let mut heavy = backends(5, |_| 1);
        heavy[2].weight = MAX_WEIGHT + 1;
        assert!(build_table(&heavy, DEFAULT_TABLE_SIZE).is_err());
    }

    #[test]
    fn add_then_remove_restores_the_table() {
        for n in [1, 3, 10, 100] {
            let set = backends(n, |i| i % 3 + 1);
            let original = build_table(&set, DEFAULT_TABLE_SIZE).unwrap();
            let mut grown = set.clone();
            grown.push(Backend {
                identity: v4([192, 168, 1, 1], 8080),
                id: 9999,
                weight: 2,
            });
            let with_extra = build_table(&grown, DEFAULT_TABLE_SIZE).unwrap();
            assert_ne!(with_extra, original);
            assert!(with_extra.contains(&9999));
            grown.pop();
            assert_eq!(build_table(&grown, DEFAULT_TABLE_SIZE).unwrap(), original);
        }
    }
}
