//! What happens when memory protection ends a process.
//!
//! A worker process installs a recorder for SIGSEGV and SIGBUS: when the MMU
//! refuses an access, the handler writes the signal, `si_code`, the address
//! and, when the address falls inside one of the worker's mappings, the array
//! and element index into the worker's slot in the control block. Then it
//! resets the handler and re-raises, so the process still dies of the signal
//! (the coordinator sees a real SIGSEGV) but the coordinator can say *what*
//! was refused: "write to a[1048576] (worker 0's chunk) blocked by the
//! read-only mapping".
//!
//! In threads mode nothing records: there is no other process to read it.
//! [`announce_fatal_signals`] installs a last word instead, so the user learns
//! why the whole run vanished.
//!
//! Only async-signal-safe operations run in the handlers: atomic stores,
//! `write(2)` from a stack buffer, `sigaction` and `raise`.

use std::ops::Range;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

use super::control::Slot;

/// Where a worker's mappings are, to turn a fault address into an index.
#[derive(Clone, Debug)]
pub(crate) struct AddressMap {
    pub(crate) a: Range<usize>,
    pub(crate) b: Range<usize>,
    pub(crate) c: Range<usize>,
    pub(crate) c_first: usize,
    pub(crate) elem: usize,
}

static SLOT: AtomicPtr<Slot> = AtomicPtr::new(std::ptr::null_mut());
// a.start, a.end, b.start, b.end, c.start, c.end, c_first, elem
static MAP: [AtomicUsize; 8] = [const { AtomicUsize::new(0) }; 8];

/// Records faults into a slot while alive.
#[derive(Debug)]
pub struct FaultRecorder {
    _private: (),
}

impl Drop for FaultRecorder {
    fn drop(&mut self) {
        SLOT.store(std::ptr::null_mut(), Ordering::SeqCst);
    }
}

/// Installs the fault recorder for this process. `slot` must outlive the
/// returned guard (it lives in the worker's control mapping).
pub fn record_faults(slot: &Slot, arrays: &super::WorkerArrays) -> std::io::Result<FaultRecorder> {
    let map = arrays.address_map();
    for (cell, v) in
        MAP.iter().zip([map.a.start, map.a.end, map.b.start, map.b.end, map.c.start, map.c.end, map.c_first, map.elem])
    {
        cell.store(v, Ordering::SeqCst);
    }
    SLOT.store(slot as *const Slot as *mut Slot, Ordering::SeqCst);
    for sig in [libc::SIGSEGV, libc::SIGBUS] {
        install(sig, on_fault)?;
    }
    Ok(FaultRecorder { _private: () })
}

type Handler = extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void);

fn install(sig: libc::c_int, handler: Handler) -> std::io::Result<()> {
    // SAFETY: a zeroed sigaction is a valid starting value; we set the
    // handler (an `extern "C" fn(c_int, *mut siginfo_t, *mut c_void)`) and
    // flags. SA_RESETHAND restores the default action on entry, so the
    // handler's own `raise` kills the process with the original signal.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler as *const () as libc::sighandler_t;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_RESETHAND | libc::SA_NODEFER;
        libc::sigemptyset(&mut action.sa_mask);
        if libc::sigaction(sig, &action, std::ptr::null_mut()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

extern "C" fn on_fault(sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo_t for an SA_SIGINFO handler
    // of SIGSEGV/SIGBUS, whose si_addr is the faulting address.
    let (addr, code) = unsafe { ((*info).si_addr() as usize, (*info).si_code) };
    let slot = SLOT.load(Ordering::SeqCst);
    if !slot.is_null() {
        // SAFETY: `SLOT` is set only while a FaultRecorder lives, and the
        // slot it points to lives in a mapping that outlives the recorder.
        // Only atomic stores follow, which are async-signal-safe.
        let slot = unsafe { &*slot };
        slot.fault_signal.store(sig as u32, Ordering::SeqCst);
        slot.fault_code.store(code as u32, Ordering::SeqCst);
        slot.fault_addr.store(addr as u64, Ordering::SeqCst);
        let m: [usize; 8] = std::array::from_fn(|i| MAP[i].load(Ordering::SeqCst));
        let elem = m[7].max(1);
        let (array, index) = if (m[0]..m[1]).contains(&addr) {
            (1, (addr - m[0]) / elem)
        } else if (m[2]..m[3]).contains(&addr) {
            (2, (addr - m[2]) / elem)
        } else if (m[4]..m[5]).contains(&addr) {
            (3, m[6] + (addr - m[4]) / elem)
        } else {
            (0, 0)
        };
        slot.fault_index.store(index as u64, Ordering::SeqCst);
        slot.fault_array.store(array, Ordering::SeqCst);
    }
    // SAFETY: raise is async-signal-safe; SA_RESETHAND restored the default
    // action, so this terminates the process with `sig`.
    unsafe {
        libc::raise(sig);
    }
}

/// The `segv` fault: a store through a wild pointer (into the never-mapped
/// first page), as a buggy native extension would do.
pub fn wild_write() -> ! {
    let wild = std::ptr::without_provenance_mut::<u64>(0x10);
    // SAFETY: deliberately not sound: the fault the user asked to inject.
    // Page zero is never mapped (vm.mmap_min_addr), so the store faults
    // and the process is killed by SIGSEGV before it can complete.
    unsafe { wild.write_volatile(0xDEAD_BEEF) };
    unreachable!("a store to page zero returned")
}

/// In threads mode: when a worker thread calls `exit()`, says so on the way
/// out (the whole process exits with it, coordinator included).
pub fn announce_exit_from_workers() {
    extern "C" fn on_exit() {
        if std::thread::current().name().is_some_and(|n| n.starts_with("vecpar-worker-")) {
            let me = std::thread::current();
            eprintln!(
                "vecpar-coord: {} called exit(): threads share one process, so the coordinator and every other \
                 worker exit with it (this is what --mode procs isolates)",
                me.name().unwrap_or("a worker thread").replace("vecpar-worker-", "worker thread ")
            );
        }
    }
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: registers a plain `extern "C" fn()` with no captured state;
        // the C library calls it at most once, from `exit`, on the exiting
        // thread, where printing to stderr is allowed.
        unsafe {
            libc::atexit(on_exit);
        }
    });
}

static LAST_WORDS: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());
static LAST_WORDS_LEN: AtomicUsize = AtomicUsize::new(0);

/// In threads mode: on a fatal signal, prints one line naming the signal and
/// `context`, then dies of it. `context` must be a static string.
pub fn announce_fatal_signals(context: &'static str) {
    LAST_WORDS.store(context.as_ptr() as *mut u8, Ordering::SeqCst);
    LAST_WORDS_LEN.store(context.len(), Ordering::SeqCst);
    for sig in [libc::SIGSEGV, libc::SIGBUS, libc::SIGABRT, libc::SIGILL, libc::SIGFPE] {
        let _ = install(sig, on_fatal);
    }
}

extern "C" fn on_fatal(sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    let mut buf = [0u8; 512];
    let mut len = 0usize;
    let mut put = |bytes: &[u8]| {
        let n = bytes.len().min(buf.len() - len);
        buf[len..len + n].copy_from_slice(&bytes[..n]);
        len += n;
    };
    put(b"vecpar-coord: a worker thread died of ");
    put(match sig {
        libc::SIGSEGV => b"SIGSEGV".as_slice(),
        libc::SIGBUS => b"SIGBUS",
        libc::SIGABRT => b"SIGABRT (abort)",
        libc::SIGILL => b"SIGILL",
        libc::SIGFPE => b"SIGFPE",
        _ => b"a fatal signal",
    });
    if sig == libc::SIGSEGV || sig == libc::SIGBUS {
        // SAFETY: valid siginfo for an SA_SIGINFO handler of these signals.
        let addr = unsafe { (*info).si_addr() as usize };
        put(b" at address 0x");
        let mut hex = [0u8; 16];
        for (i, h) in hex.iter_mut().enumerate() {
            let nibble = (addr >> ((15 - i) * 4)) & 0xf;
            *h = b"0123456789abcdef"[nibble];
        }
        let first = hex.iter().position(|&h| h != b'0').unwrap_or(15);
        put(&hex[first..]);
    }
    let (p, n) = (LAST_WORDS.load(Ordering::SeqCst), LAST_WORDS_LEN.load(Ordering::SeqCst));
    if !p.is_null() {
        put(b": ");
        // SAFETY: `p`/`n` come from a `&'static str` in announce_fatal_signals.
        put(unsafe { std::slice::from_raw_parts(p, n) });
    }
    put(b"\n");
    // SAFETY: write(2) and raise(3) are async-signal-safe; `buf[..len]` is
    // initialised stack memory. SA_RESETHAND restored the default action,
    // so raise terminates the process with `sig`.
    unsafe {
        libc::write(2, buf.as_ptr().cast(), len);
        libc::raise(sig);
    }
}
