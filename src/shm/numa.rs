//! NUMA system calls on the segment's mappings: binding a range of pages
//! to nodes before they are reserved (`mbind`), asking where pages are
//! (`move_pages` in query mode), the node this thread runs on (`getcpu`),
//! and whether the process runs under a memory policy of its own
//! (`get_mempolicy`). Called through `libc::syscall`: glibc has no
//! wrappers (they live in libnuma, which vecpar does not need).
//!
//! None of these calls can break memory safety: they change or report
//! where pages live, never what they hold or whether they are mapped.

use nix::errno::Errno;

use crate::machine::numa::Binding;

/// Bits of a node mask, in words of 64 bits: enough for 1024 nodes.
const MASK_WORDS: usize = 16;

fn mask_of(nodes: &[u32]) -> Result<[u64; MASK_WORDS], Errno> {
    let mut mask = [0u64; MASK_WORDS];
    for &n in nodes {
        let n = n as usize;
        if n >= MASK_WORDS * 64 {
            return Err(Errno::EINVAL);
        }
        mask[n / 64] |= 1 << (n % 64);
    }
    Ok(mask)
}

/// Binds the pages of `addr..addr + len` (page-aligned, inside a mapping of
/// this process) as `binding` says, before they are allocated. A shared
/// mapping's policy belongs to the file: it holds for every process's
/// allocations of those pages. Returns the node bound to, for `Local`.
pub(super) fn bind(addr: usize, len: usize, binding: &Binding) -> Result<Option<u32>, Errno> {
    let (mode, nodes, node) = match binding {
        Binding::Inherit => return Ok(None),
        Binding::Local { node } => {
            let node = match node {
                Some(n) => *n,
                None => current_node().ok_or(Errno::ENOSYS)? as u32,
            };
            // Preferred, not bound: a node that runs out spills to the
            // others (which the placement report shows), where a strict
            // bind would make the reservation fail.
            (libc::MPOL_PREFERRED, vec![node], Some(node))
        }
        Binding::Interleave { nodes } => (libc::MPOL_INTERLEAVE, nodes.clone(), None),
    };
    if len == 0 {
        return Ok(node);
    }
    let mask = mask_of(&nodes)?;
    // SAFETY: mbind only sets the memory policy of the given range of this
    // process's address space (the kernel checks it is mapped); it reads
    // `mask`, a live buffer of MASK_WORDS words whose size in bits it is
    // given, and touches no memory of ours.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mbind,
            addr as libc::c_ulong,
            len as libc::c_ulong,
            mode as libc::c_ulong,
            mask.as_ptr(),
            (MASK_WORDS * 64) as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    if r < 0 { Err(Errno::last()) } else { Ok(node) }
}

/// The node of every `stride`-th page of `addr..addr + len` (pages of
/// `page` bytes, page-aligned, inside a mapping of this process): a node
/// number, or a negative errno for a page the kernel cannot place (not
/// present). The mapping's page tables are populated for reading first
/// (`MADV_POPULATE_READ`), so that a page another process allocated is
/// found here too. On shared memory (a memfd, tmpfs, an MPI window's file)
/// that read fault allocates any page not yet there, under this process's
/// policy: ask only about pages their owners have already reserved or
/// written (vecpar asks after the filling, which every worker and rank has
/// finished by then).
pub(super) fn nodes_of(addr: usize, len: usize, page: usize, stride: usize) -> Result<Vec<i32>, Errno> {
    let stride = stride.max(1);
    let pages: Vec<usize> = (0..len / page).step_by(stride).map(|i| addr + i * page).collect();
    if pages.is_empty() {
        return Ok(Vec::new());
    }
    const MADV_POPULATE_READ: libc::c_int = 22;
    // SAFETY: madvise on a range of this process's own mapping; populating
    // page tables for reading changes no memory. A kernel before 5.14
    // answers EINVAL, and move_pages then reports untouched pages as
    // absent.
    let _ = unsafe { libc::madvise(addr as *mut libc::c_void, len, MADV_POPULATE_READ) };
    let mut status = vec![0i32; pages.len()];
    for (ptrs, out) in pages.chunks(4096).zip(status.chunks_mut(4096)) {
        let ptrs: Vec<*const libc::c_void> = ptrs.iter().map(|&a| a as *const libc::c_void).collect();
        // SAFETY: move_pages with a null node list only reports: it reads
        // `ptrs.len()` addresses from `ptrs` and writes as many status
        // words to `out`, both live buffers of that length; pid 0 is this
        // process.
        let r = unsafe {
            libc::syscall(
                libc::SYS_move_pages,
                0 as libc::c_int,
                ptrs.len() as libc::c_ulong,
                ptrs.as_ptr(),
                std::ptr::null::<libc::c_int>(),
                out.as_mut_ptr(),
                0 as libc::c_int,
            )
        };
        if r < 0 {
            return Err(Errno::last());
        }
    }
    Ok(status)
}

/// The node the calling thread runs on now.
pub(crate) fn current_node() -> Option<usize> {
    let (mut cpu, mut node) = (0u32, 0u32);
    // SAFETY: getcpu writes one unsigned int to each of the two live
    // locals; the third argument is unused since Linux 2.6.24.
    let r = unsafe { libc::syscall(libc::SYS_getcpu, &mut cpu as *mut u32, &mut node as *mut u32, 0usize) };
    (r == 0).then_some(node as usize)
}

/// The process's memory policy mode, when it is not the default one
/// (`numactl --interleave`, `--membind`, `--preferred` set one); `None`
/// for the default or when the kernel will not say.
pub(crate) fn process_policy() -> Option<&'static str> {
    let mut mode: libc::c_int = 0;
    // SAFETY: get_mempolicy with a null node mask and no address writes the
    // mode to `mode`, a live local, and nothing else.
    let r = unsafe {
        libc::syscall(
            libc::SYS_get_mempolicy,
            &mut mode as *mut libc::c_int,
            std::ptr::null_mut::<libc::c_ulong>(),
            0 as libc::c_ulong,
            std::ptr::null_mut::<libc::c_void>(),
            0 as libc::c_ulong,
        )
    };
    if r != 0 {
        return None;
    }
    // Mode flags (static/relative nodes, balancing) sit in the high bits.
    match mode & 0xff {
        libc::MPOL_DEFAULT | libc::MPOL_LOCAL => None,
        libc::MPOL_PREFERRED => Some("preferred"),
        libc::MPOL_BIND => Some("bind"),
        libc::MPOL_INTERLEAVE => Some("interleave"),
        _ => Some("another"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_hold_their_nodes() {
        let m = mask_of(&[0, 3, 64, 1023]).unwrap();
        assert_eq!((m[0], m[1], m[15]), (0b1001, 1, 1 << 63));
        assert_eq!(mask_of(&[1024]), Err(Errno::EINVAL));
    }

    #[test]
    fn this_thread_has_a_node_and_the_default_policy() {
        assert!(current_node().is_some());
        // The test runner starts without numactl.
        if std::env::var_os("VECPAR_UNDER_NUMACTL").is_none() {
            assert_eq!(process_policy(), None);
        }
    }

    #[test]
    fn pages_of_a_shared_mapping_are_placed_and_bound() {
        // A memfd of 4 pages, bound to this thread's node, then touched:
        // every page is found on that node.
        let fd = nix::sys::memfd::memfd_create("vecpar-unit-numa", nix::sys::memfd::MFdFlags::MFD_CLOEXEC).unwrap();
        let page = crate::machine::page_size();
        nix::unistd::ftruncate(&fd, (4 * page) as libc::off_t).unwrap();
        let mut map = super::super::mapping::MapRW::new(std::os::fd::AsFd::as_fd(&fd), 0, 4 * page).unwrap();
        let node = current_node().unwrap() as u32;
        assert_eq!(map.bind(&(0..4 * page), &Binding::Local { node: Some(node) }), Ok(Some(node)));
        map.write_bytes(0, &vec![1u8; 4 * page]);
        let nodes = map.nodes(&(0..4 * page), page, 1).unwrap();
        assert_eq!(nodes, vec![node as i32; 4]);
        assert_eq!(map.nodes(&(0..4 * page), page, 3).unwrap().len(), 2, "every third page");
    }
}
