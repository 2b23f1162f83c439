//! Reading a whole hash map a few thousand entries per syscall, with
//! `BPF_MAP_LOOKUP_BATCH` (Linux 5.6+), and writing many entries of an
//! array with one `BPF_MAP_UPDATE_BATCH`.
//!
//! aya's map iterator costs two `bpf()` calls per entry (`GET_NEXT_KEY`,
//! then `LOOKUP_ELEM`): over a full flow table of a million entries that
//! is two million syscalls, more than a core for a second, every second.
//! A batch lookup copies whole hash buckets at a time into our buffers.
//! aya 0.14 has no batch API, hence this small wrapper over the raw
//! syscall.
//!
//! Only for the maps aya's [`HashMap`] stands for (`BPF_MAP_TYPE_HASH` and
//! `BPF_MAP_TYPE_LRU_HASH`): their values are one `V` per entry (not one
//! per CPU), and aya checked the key and value sizes when the handle was
//! made, which is what makes the buffers below the right size for what the
//! kernel writes into them.
//!
//! Like any walk of a map that the data plane changes underneath, a batch
//! walk sees each entry that stays put exactly once; an entry added or
//! removed meanwhile may or may not be seen. Unlike `GET_NEXT_KEY`, whose
//! walk restarts from the top when the key it was given has just been
//! evicted, the batch cursor is a bucket index, so a walk never repeats.

use std::{
    borrow::Borrow,
    io,
    mem::{MaybeUninit, size_of},
    os::fd::{AsFd as _, AsRawFd as _, BorrowedFd},
};

use aya::{
    Pod,
    maps::{Array, HashMap, IterableMap as _, MapData, PerCpuArray},
};

/// `BPF_MAP_LOOKUP_BATCH` and `BPF_MAP_UPDATE_BATCH` from `enum bpf_cmd`
/// (uapi `linux/bpf.h`).
pub(super) const BPF_MAP_LOOKUP_BATCH: libc::c_long = 24;
const BPF_MAP_UPDATE_BATCH: libc::c_long = 26;

/// Entries asked for per syscall: a few hundred KiB of buffers for the
/// flow table, and 256 syscalls for a million entries.
pub const DEFAULT_BATCH_ENTRIES: usize = 4096;

/// The `batch` member of `union bpf_attr` (uapi `linux/bpf.h`), the
/// argument of the `BPF_MAP_*_BATCH` commands. Field for field, same
/// sizes and offsets (56 bytes); the kernel requires every byte past the
/// fields it knows of to be zero, and we pass exactly these.
#[repr(C)]
#[derive(Debug, Default)]
pub(super) struct BatchAttr {
    /// Where to resume (the previous call's `out_batch`), or 0 (null) to
    /// start at the first bucket.
    pub(super) in_batch: u64,
    /// Where the kernel writes the cursor for the next call.
    pub(super) out_batch: u64,
    /// Room for `count` keys.
    pub(super) keys: u64,
    /// Room for `count` values.
    pub(super) values: u64,
    /// In: how many entries `keys` and `values` have room for. Out: how
    /// many the kernel wrote.
    pub(super) count: u32,
    pub(super) map_fd: u32,
    /// Only `BPF_F_LOCK` (for values holding a spin lock) exists; 0.
    pub(super) elem_flags: u64,
    /// Must be 0.
    pub(super) flags: u64,
}

const _: () = assert!(size_of::<BatchAttr>() == 56);

/// The opaque position of a batch walk. For hash maps the kernel reads and
/// writes a `u32` bucket index; other map types use a key's worth of bytes,
/// so the cursor is made as large as the larger of the two (in `u64`s, for
/// alignment) to be safe either way.
struct Cursor(Vec<u64>);

impl Cursor {
    fn for_key<K>() -> Self {
        Self(vec![0; size_of::<K>().max(size_of::<u32>()).div_ceil(8)])
    }

    fn address(&mut self) -> u64 {
        self.0.as_mut_ptr() as u64
    }
}

/// Every entry of `map`, read [`DEFAULT_BATCH_ENTRIES`] at a time. Yields
/// `Err` once (and then nothing) if the kernel refuses a batch (e.g. a
/// kernel older than 5.6: `EINVAL`).
pub fn entries<T, K, V>(map: &HashMap<T, K, V>) -> Entries<'_, K, V>
where
    T: Borrow<MapData>,
    K: Pod,
    V: Pod,
{
    Entries::new(map.map(), DEFAULT_BATCH_ENTRIES)
}

/// [`entries`] with a chosen batch size (at least 1; it grows by itself
/// when a single hash bucket holds more entries than it has room for).
pub fn entries_in_batches_of<T, K, V>(
    map: &HashMap<T, K, V>,
    batch_entries: usize,
) -> Entries<'_, K, V>
where
    T: Borrow<MapData>,
    K: Pod,
    V: Pod,
{
    Entries::new(map.map(), batch_entries.max(1))
}

/// Iterator over a hash map's entries, filled one batch syscall at a time.
/// Borrows the map, so its fd stays open while the walk lasts.
pub struct Entries<'map, K, V> {
    map: &'map MapData,
    /// Zeroed when allocated, so every slot always holds a valid `K`/`V`
    /// (any bytes are, for `Pod`), whatever the kernel did or did not
    /// write: reading one is never undefined behaviour.
    keys: Vec<MaybeUninit<K>>,
    values: Vec<MaybeUninit<V>>,
    /// How many of `keys`/`values` the last batch filled, and how many of
    /// those have been handed out.
    filled: usize,
    next: usize,
    /// `None` before the first batch (start at the first bucket).
    resume_from: Option<Cursor>,
    /// The kernel said there is nothing past the last batch (`ENOENT`), or
    /// refused one.
    done: bool,
}

impl<'map, K: Pod, V: Pod> Entries<'map, K, V> {
    /// `map` must be a non-per-CPU hash map whose key and value sizes are
    /// `K`'s and `V`'s: the only callers pass the `MapData` of an aya
    /// [`HashMap<_, K, V>`], which guarantees both.
    fn new(map: &'map MapData, batch_entries: usize) -> Self {
        Self {
            map,
            keys: vec![MaybeUninit::zeroed(); batch_entries],
            values: vec![MaybeUninit::zeroed(); batch_entries],
            filled: 0,
            next: 0,
            resume_from: None,
            done: false,
        }
    }

    /// Reads the next batch into the buffers, doubling them while a single
    /// bucket does not fit (`ENOSPC`, returned only when nothing was read).
    fn refill(&mut self) -> io::Result<()> {
        loop {
            match self.lookup_batch() {
                Err(error) if error.raw_os_error() == Some(libc::ENOSPC) => {
                    let grown = self.keys.len() * 2;
                    self.keys.resize(grown, MaybeUninit::zeroed());
                    self.values.resize(grown, MaybeUninit::zeroed());
                }
                result => return result,
            }
        }
    }

    /// One `BPF_MAP_LOOKUP_BATCH`: sets `filled` and advances the cursor.
    /// `ENOENT` means the walk reached the end, possibly with a last,
    /// partial batch: that is success here, with `done` set.
    fn lookup_batch(&mut self) -> io::Result<()> {
        let mut next_cursor = Cursor::for_key::<K>();
        let mut attr = BatchAttr {
            in_batch: self.resume_from.as_mut().map_or(0, Cursor::address),
            out_batch: next_cursor.address(),
            keys: self.keys.as_mut_ptr() as u64,
            values: self.values.as_mut_ptr() as u64,
            count: u32::try_from(self.keys.len()).unwrap_or(u32::MAX),
            map_fd: self.map.fd().as_fd().as_raw_fd() as u32,
            ..BatchAttr::default()
        };
        // SAFETY: every address in `attr` points to memory we own, that
        // outlives the call and is large enough for what the kernel writes
        // there: `count` keys into `keys` and values into `values` (`count`
        // is at most their length; the sizes are the map's, as aya checked,
        // and its values are not per CPU), and a cursor into `out_batch`
        // (at least 4 bytes, and a key's size). `in_batch` is read only.
        let error = unsafe { command(BPF_MAP_LOOKUP_BATCH, &mut attr) }.err();
        let at_end = error
            .as_ref()
            .is_some_and(|error| error.raw_os_error() == Some(libc::ENOENT));
        if let Some(error) = error.filter(|_| !at_end) {
            return Err(error);
        }
        // The kernel never reports more than it was given room for; the
        // `min` only keeps a broken kernel from making us read past them.
        self.filled = (attr.count as usize).min(self.keys.len());
        self.next = 0;
        self.resume_from = Some(next_cursor);
        self.done = at_end;
        Ok(())
    }
}

impl<K: Pod, V: Pod> Iterator for Entries<'_, K, V> {
    type Item = io::Result<(K, V)>;

    fn next(&mut self) -> Option<Self::Item> {
        while self.next == self.filled {
            if self.done {
                return None;
            }
            if let Err(error) = self.refill() {
                self.done = true;
                return Some(Err(error));
            }
        }
        let index = self.next;
        self.next += 1;
        // SAFETY: every slot is initialized (zeroed when allocated, then
        // overwritten by the kernel with entries `0..filled`), and any bytes
        // make a valid `K` and `V`, which are `Pod`. `index < filled` picks
        // one the last batch wrote.
        let entry = unsafe {
            (
                self.keys[index].assume_init(),
                self.values[index].assume_init(),
            )
        };
        Some(Ok(entry))
    }
}

/// Issues one `BPF_MAP_*_BATCH` command.
///
/// # Safety
///
/// Every address in `attr` must be valid for what `command` reads and
/// writes there, for the map `attr.map_fd` names.
pub(super) unsafe fn command(command: libc::c_long, attr: &mut BatchAttr) -> io::Result<()> {
    // SAFETY: `attr` is a valid `batch` member of `bpf_attr` and we pass its
    // exact size; the caller vouches for the addresses in it.
    let result = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            command,
            attr as *mut BatchAttr,
            size_of::<BatchAttr>() as libc::c_uint,
        )
    };
    if result < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Writes `values[i]` at index `indices[i]` of `array`, all with one
/// syscall (one per entry costs a microsecond or two each, and a
/// configuration has up to 100,000 reals).
pub fn set_all<V: Pod>(array: &Array<MapData, V>, indices: &[u32], values: &[V]) -> io::Result<()> {
    assert_eq!(indices.len(), values.len(), "one value per index");
    update(array.map().fd().as_fd(), indices, values.as_ptr().cast())
}

/// Zeroes entries `indices` of `array` on every CPU, with one syscall.
pub fn zero_all<V: Pod>(array: &PerCpuArray<MapData, V>, indices: &[u32]) -> io::Result<()> {
    let cpus = aya::util::nr_cpus().map_err(|(_, error)| error)?;
    // The kernel lays out a per-CPU value as one value per possible CPU,
    // each rounded up to 8 bytes.
    let per_cpu_words = size_of::<V>().div_ceil(8);
    let zeros = vec![0u64; indices.len() * cpus * per_cpu_words];
    update(array.map().fd().as_fd(), indices, zeros.as_ptr().cast())
}

/// Inserts (or overwrites) `keys[i] -> values[i]` in the hash map `map`,
/// all with one syscall: the kernel still updates them one by one, but a
/// syscall each is most of the cost (a configuration can name 100,000 NAT
/// reals).
pub fn insert_all<T, K: Pod, V: Pod>(
    map: &HashMap<T, K, V>,
    keys: &[K],
    values: &[V],
) -> io::Result<()>
where
    T: Borrow<MapData>,
{
    assert_eq!(keys.len(), values.len(), "one value per key");
    update(map.map().fd().as_fd(), keys, values.as_ptr().cast())
}

/// One `BPF_MAP_UPDATE_BATCH` of `keys.len()` entries of `map` (an array,
/// or a hash map of one value per key), whose values are read from
/// `values`: `keys.len()` values of the size the map takes per entry,
/// which the callers guarantee, as they guarantee that `K` is the map's
/// key.
pub(super) fn update<K>(map: BorrowedFd<'_>, keys: &[K], values: *const u8) -> io::Result<()> {
    if keys.is_empty() {
        return Ok(());
    }
    let mut attr = BatchAttr {
        keys: keys.as_ptr() as u64,
        values: values as u64,
        count: u32::try_from(keys.len()).map_err(io::Error::other)?,
        map_fd: map.as_raw_fd() as u32,
        ..BatchAttr::default()
    };
    // SAFETY: for an update the kernel only reads: `count` keys of the
    // map's key size from `keys`, and `count` values of its value size from
    // `values`, which the callers size accordingly (aya checked `K` and `V`
    // against the map when the handle was made). `elem_flags` 0 (`BPF_ANY`)
    // inserts or overwrites.
    unsafe { command(BPF_MAP_UPDATE_BATCH, &mut attr) }
}
