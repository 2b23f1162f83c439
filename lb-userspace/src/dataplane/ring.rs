//! Reading and writing rows of the scheduling ring (`LB_MAGLEV`) a row at a
//! time.
//!
//! A row is `table_size` slots (65,537 by default) and a full configuration
//! has a thousand rows: one `bpf()` call per slot is tens of seconds. The
//! map is created with `BPF_F_MMAPABLE`, so a row is read and written
//! through a shared mapping of just the pages that hold it: plain loads and
//! stores, straight into the memory the data plane reads.
//!
//! A ring pinned by an lbd from before the flag cannot be mapped (the
//! kernel refuses with `EINVAL`); it stays in use, because recreating it
//! would mean a moment without tables for the running data plane. Such a
//! ring is read and written with `BPF_MAP_LOOKUP_BATCH` and
//! `BPF_MAP_UPDATE_BATCH` instead (Linux 5.6+), one call per row each:
//! slower than the mapping, far faster than a call per slot.
//!
//! Either way the ring itself is the record of what the rows hold: the
//! daemon keeps no copy, and compares against the ring to write only the
//! slots that change.

use std::{
    io,
    os::fd::{AsFd as _, AsRawFd as _, BorrowedFd},
    ptr::NonNull,
    sync::atomic::{AtomicU32, Ordering},
};

use anyhow::{Context as _, Result, ensure};
use aya::maps::{Array, IterableMap as _, MapData};

use super::batch::{self, BPF_MAP_LOOKUP_BATCH, BatchAttr, command};

/// `BPF_F_MMAPABLE` from uapi `linux/bpf.h`: the map may be `mmap`ed.
const BPF_F_MMAPABLE: u32 = 1 << 10;

/// How rows reach the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Loads and stores through a shared mapping of the row's pages.
    Mapped,
    /// One batch lookup and one batch update per row (a ring created
    /// without `BPF_F_MMAPABLE`).
    Batched,
}

/// The ring, `table_size` slots per service id, seen a row at a time.
/// Shareable between threads: each call works on its own row.
pub struct Ring<'map> {
    fd: BorrowedFd<'map>,
    table_size: u32,
    /// Rows in the map (`max_entries / table_size`).
    rows: u32,
    access: Access,
}

impl<'map> Ring<'map> {
    /// The ring behind `array`, with rows of `table_size` slots.
    pub fn new(array: &'map Array<MapData, u32>, table_size: u32) -> Result<Self> {
        ensure!(table_size > 0, "a scheduling row needs at least one slot");
        let map = array.map();
        let info = map.info().context("reading the scheduling ring's flags")?;
        let access = if info.map_flags() & BPF_F_MMAPABLE != 0 {
            Access::Mapped
        } else {
            Access::Batched
        };
        Ok(Self {
            fd: map.fd().as_fd(),
            table_size,
            rows: info.max_entries() / table_size,
            access,
        })
    }

    pub fn access(&self) -> Access {
        self.access
    }

    /// The real ids in row `id`.
    pub fn read_row(&self, id: u32) -> Result<Vec<u32>> {
        self.check_row(id)?;
        match self.access {
            Access::Mapped => {
                let window = Window::map(self.fd, id, self.table_size)?;
                Ok(window
                    .slots()
                    .map(|slot| slot.load(Ordering::Relaxed))
                    .collect())
            }
            Access::Batched => self.lookup_row(id),
        }
        .with_context(|| format!("reading scheduling row {id}"))
    }

    /// Makes row `id` hold `row` (`table_size` real ids), writing only the
    /// slots that differ. Returns how many it wrote.
    pub fn write_row(&self, id: u32, row: &[u32]) -> Result<usize> {
        self.check_row(id)?;
        ensure!(
            row.len() == self.table_size as usize,
            "a row of {} slots for a ring of {}",
            row.len(),
            self.table_size
        );
        match self.access {
            Access::Mapped => Window::map(self.fd, id, self.table_size).map(|window| {
                let mut written = 0;
                for (slot, &real) in window.slots().zip(row) {
                    if slot.load(Ordering::Relaxed) != real {
                        slot.store(real, Ordering::Relaxed);
                        written += 1;
                    }
                }
                written
            }),
            Access::Batched => self.update_row(id, row),
        }
        .with_context(|| format!("writing scheduling row {id}"))
    }

    fn check_row(&self, id: u32) -> Result<()> {
        ensure!(
            id < self.rows,
            "scheduling row {id} is past the ring's {} rows",
            self.rows
        );
        Ok(())
    }

    fn first_key(&self, id: u32) -> u32 {
        // In range: `check_row` bounds `id` by `max_entries / table_size`.
        id * self.table_size
    }

    /// The row with one `BPF_MAP_LOOKUP_BATCH`, which for arrays starts at
    /// the key after `in_batch` (at key 0 when there is none).
    fn lookup_row(&self, id: u32) -> io::Result<Vec<u32>> {
        let first = self.first_key(id);
        let mut previous = first.wrapping_sub(1);
        let mut last = 0u32;
        let mut keys = vec![0u32; self.table_size as usize];
        let mut values = vec![0u32; self.table_size as usize];
        let mut attr = BatchAttr {
            in_batch: if first == 0 {
                0
            } else {
                &mut previous as *mut u32 as u64
            },
            out_batch: &mut last as *mut u32 as u64,
            keys: keys.as_mut_ptr() as u64,
            values: values.as_mut_ptr() as u64,
            count: self.table_size,
            map_fd: self.fd.as_raw_fd() as u32,
            ..BatchAttr::default()
        };
        // SAFETY: `attr` is a valid `batch` member of `bpf_attr` and we pass
        // its exact size. The kernel reads a key (4 bytes, a `u32`) from
        // `in_batch`, writes one to `out_batch`, and at most `count` keys
        // and values of 4 bytes each (the map's key and value sizes, which
        // aya checked for `Array<_, u32>`) into buffers of `count` `u32`s,
        // all of which outlive the call.
        unsafe { command(BPF_MAP_LOOKUP_BATCH, &mut attr) }?;
        // Every key past `first` exists in an array, so the kernel reads
        // the whole row unless the row runs past the map's end, which
        // `check_row` rules out.
        if attr.count != self.table_size || keys.first() != Some(&first) {
            return Err(io::Error::other(format!(
                "the kernel returned {} slots from key {:?} for a row of {} from key {first}",
                attr.count,
                keys.first(),
                self.table_size
            )));
        }
        Ok(values)
    }

    /// Writes the slots of row `id` that differ from `row` with one
    /// `BPF_MAP_UPDATE_BATCH`.
    fn update_row(&self, id: u32, row: &[u32]) -> io::Result<usize> {
        let first = self.first_key(id);
        let current = self.lookup_row(id)?;
        let (keys, values): (Vec<u32>, Vec<u32>) = (first..)
            .zip(row.iter().zip(&current))
            .filter(|(_, (wanted, held))| wanted != held)
            .map(|(key, (&wanted, _))| (key, wanted))
            .unzip();
        // The ring's values are `u32`s, one per key.
        batch::update(self.fd, &keys, values.as_ptr().cast())?;
        Ok(keys.len())
    }
}

/// The kernel lays an array's values `value_size` rounded up to 8 bytes
/// apart; ours are `u32`s in the first 4 bytes of each 8.
const SLOT_STRIDE: usize = 8;

/// A shared mapping of the pages holding one row, unmapped when dropped.
struct Window {
    mapping: NonNull<libc::c_void>,
    length: usize,
    /// Byte offset of the row's first slot within the mapping.
    start: usize,
    table_size: usize,
}

impl Window {
    /// Maps the whole pages that hold row `id`. Offset 0 of an array map's
    /// mapping is its first value.
    fn map(fd: BorrowedFd<'_>, id: u32, table_size: u32) -> io::Result<Self> {
        let page = page_size();
        let row_bytes = table_size as usize * SLOT_STRIDE;
        let row_start = id as usize * row_bytes;
        let offset = row_start / page * page;
        let length = (row_start + row_bytes).div_ceil(page) * page - offset;
        // SAFETY: a fresh mapping chosen by the kernel (no address hint), of
        // an fd that is open for the call; we own the result until `drop`.
        let mapping = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                length,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                offset as libc::off_t,
            )
        };
        if mapping == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Self {
            mapping: NonNull::new(mapping).ok_or_else(|| io::Error::other("mmap returned null"))?,
            length,
            start: row_start - offset,
            table_size: table_size as usize,
        })
    }

    /// The row's slots in order. Atomics, because the data plane reads
    /// them concurrently; relaxed is enough: a slot holds one real id or
    /// the next, and the service entry that makes a new row reachable is
    /// published later by the kernel (a `bpf()` update, with release
    /// semantics) from a thread that has seen these stores.
    fn slots(&self) -> impl Iterator<Item = &AtomicU32> {
        (0..self.table_size).map(move |slot| {
            // SAFETY: `start + slot * SLOT_STRIDE + 4` is within the mapping
            // (it covers the row's `table_size * SLOT_STRIDE` bytes from
            // `start`), 4-aligned (the mapping is page-aligned and `start`
            // and the stride are multiples of 8), and the mapping lives as
            // long as `self`. The memory is only ever accessed atomically
            // from here and by the kernel's word-sized loads and stores.
            unsafe {
                let cell = self
                    .mapping
                    .as_ptr()
                    .cast::<u8>()
                    .add(self.start + slot * SLOT_STRIDE);
                AtomicU32::from_ptr(cell.cast::<u32>())
            }
        })
    }
}

impl Drop for Window {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping `map` made; no reference into
        // it outlives `self` (`slots` borrows `self`).
        unsafe { libc::munmap(self.mapping.as_ptr(), self.length) };
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).unwrap_or(4096)
}
