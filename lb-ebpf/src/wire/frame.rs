//! Header access with the bounds check in one place.
//!
//! A [`Frame`] is a range of packet memory: the XDP context on BPF, a byte
//! buffer in the host tests. [`header`] is the only place that compares an
//! access against the frame's end, in the exact shape the verifier accepts
//! (start + size <= data_end, proved on the pointer it then hands out);
//! [`view`] and [`view_mut`] wrap it for callers that want a reference.
//! Once one of them returned `Some`, the header's fields are plain reads
//! and writes that cannot fail.
//!
//! Take the view where the bytes are used, not earlier "to be sure": LLVM
//! merges two identical checks into one, and when the pointer is computed
//! again after the first, the verifier sees a pointer nobody checked
//! ("invalid access to packet"). The same goes for checks left to a
//! helper whose caller then reads the bytes itself (see `quote::locate`).

use aya_ebpf::{bindings::xdp_md, programs::XdpContext};

/// Packet memory from `start` (inclusive) to `end` (exclusive), as
/// addresses.
pub trait Frame {
    fn start(&self) -> usize;
    fn end(&self) -> usize;
}

impl Frame for XdpContext {
    #[inline(always)]
    fn start(&self) -> usize {
        self.data()
    }

    #[inline(always)]
    fn end(&self) -> usize {
        self.data_end()
    }
}

/// A pointer to a `T` at `offset`, if the frame is long enough to hold it.
/// For callers that write through raw pointers (overlapping copies, or
/// several headers taken before the first write).
#[inline(always)]
pub fn header<T>(frame: &impl Frame, offset: usize) -> Option<*mut T> {
    let start = frame.start() + offset;
    if start + core::mem::size_of::<T>() > frame.end() {
        return None;
    }
    Some(start as *mut T)
}

/// The `T` at `offset`, if the frame holds all of it. `T` is a header type:
/// byte arrays, and `network_types` headers, which are byte arrays apart
/// from the ethertype's `u16`, always at an even offset of the frame.
#[inline(always)]
pub fn view<T>(frame: &impl Frame, offset: usize) -> Option<&T> {
    // SAFETY: `header` proved the whole `T` lies inside the frame, which
    // outlives the borrow of `frame`.
    header::<T>(frame, offset).map(|at| unsafe { &*at })
}

/// [`view`], writable. Packet memory is not owned by the `Frame` value
/// (the context is a handle to it), hence `&mut` from `&`: callers never
/// hold two views of the same bytes at once.
#[inline(always)]
#[allow(clippy::mut_from_ref)]
pub fn view_mut<T>(frame: &impl Frame, offset: usize) -> Option<&mut T> {
    // SAFETY: as in `view`.
    header::<T>(frame, offset).map(|at| unsafe { &mut *at })
}

/// The context as a BPF function's argument. Pointer arguments travel as
/// integers: LLVM rewrites a pointer argument that the function only reads
/// through into the values read (argument promotion), and the verifier
/// then finds packet pointers where it wants the context ("arg#0 expects
/// pointer to ctx"). Integers are left alone.
#[inline(always)]
pub fn ctx_arg(ctx: &XdpContext) -> usize {
    ctx.ctx as usize
}

/// The context back from [`ctx_arg`].
#[inline(always)]
pub fn ctx_from(arg: usize) -> XdpContext {
    XdpContext::new(arg as *mut xdp_md)
}

/// A frame over a byte buffer, for the host tests: the same [`header`]
/// code runs over it as over the context.
#[cfg(test)]
pub mod test_frame {
    use super::Frame;

    use core::cell::UnsafeCell;

    /// Bytes aligned like a real frame's start, so `[u16; N]` views of
    /// even offsets are aligned as they are on BPF. In an `UnsafeCell`:
    /// views write through the addresses `Frame` hands out.
    #[repr(C, align(8))]
    pub struct Bytes<const N: usize> {
        bytes: UnsafeCell<[u8; N]>,
        /// How many of `bytes` are the frame.
        len: usize,
    }

    impl<const N: usize> Bytes<N> {
        pub fn new(frame: &[u8]) -> Self {
            let mut bytes = [0; N];
            bytes[..frame.len()].copy_from_slice(frame);
            Self {
                bytes: UnsafeCell::new(bytes),
                len: frame.len(),
            }
        }

        pub fn as_slice(&self) -> &[u8] {
            // SAFETY: no view is alive while the test reads the bytes.
            unsafe { &(&*self.bytes.get())[..self.len] }
        }
    }

    impl<const N: usize> Frame for Bytes<N> {
        fn start(&self) -> usize {
            self.bytes.get() as usize
        }

        fn end(&self) -> usize {
            self.start() + self.len
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{header, test_frame::Bytes, view, view_mut};

    #[test]
    fn a_header_must_end_inside_the_frame() {
        let frame = Bytes::<64>::new(&[0; 20]);
        assert!(header::<[u8; 20]>(&frame, 0).is_some());
        assert!(header::<[u8; 8]>(&frame, 12).is_some());
        assert!(header::<[u8; 21]>(&frame, 0).is_none());
        assert!(header::<[u8; 8]>(&frame, 13).is_none());
        assert!(header::<u8>(&frame, 20).is_none());
    }

    #[test]
    fn views_read_and_write_the_frame_bytes() {
        let frame = Bytes::<64>::new(&[1, 2, 3, 4]);
        assert_eq!(view::<[u8; 2]>(&frame, 2), Some(&[3, 4]));
        *view_mut::<u8>(&frame, 0).unwrap() = 9;
        assert_eq!(frame.as_slice(), &[9, 2, 3, 4]);
    }
}
