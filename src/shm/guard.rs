//! Signals that end a process, and the faults vecpar injects on purpose.
//!
//! **In a worker process**, [`FaultRecorder`] catches SIGSEGV and SIGBUS on
//! an alternate signal stack (so that a stack overflow, too, can be
//! recorded): the handler writes the signal, `si_code`, the address and what
//! lies there — an element of `a`, `b` or `c`, or the guard page below the
//! stack — into the worker's slot, then resets the handler and re-raises, so
//! the process still dies of the signal (the coordinator sees a real
//! SIGSEGV) but the coordinator can say *what* happened: "write to a[1048576]
//! (worker 0's chunk) blocked by the read-only mapping", "stack overflow".
//!
//! **In the coordinator**, [`catch_fault_signals`] handles the signals that
//! are faults when the kernel raises them (SIGBUS, SIGSEGV, SIGILL, SIGFPE,
//! SIGABRT, SIGTRAP, SIGSYS). One *sent* by another process (`si_code` ≤ 0,
//! another sender's pid) is a terminating signal like SIGTERM: it is handed
//! to the signal thread, and the run stops in order and exits 128 + N. A
//! real SIGBUS — the segment's pages taken away under the run by a process
//! that truncated it — is one error line and exit 1, after killing every
//! worker. In threads mode, while [`announce_fatal_signals`]'s guard lives,
//! a fault of a worker thread prints a last word before the whole process
//! dies of it (and [`announce_exit_from_workers`] does for `exit`).
//! Anything else goes to the handler that was there before (Rust's, which
//! names a stack overflow), or to the default action.
//!
//! **Deliberate faults** are stores the hardware refuses: [`wild_store`] to
//! the never-mapped first page, and a store into a read-only mapping
//! (`super::chunk`). They are written in `asm!`, so that they are defined
//! at the machine level — a store instruction that traps — rather than
//! undefined behaviour in Rust's memory model.
//!
//! Only async-signal-safe operations run in the handlers: atomic loads and
//! stores, `clock_gettime`, `write(2)` from a stack buffer, `kill(2)`, `sigaction`, `raise`
//! and `_exit`.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, AtomicPtr, AtomicUsize, Ordering};

use super::control::{Control, FaultSite, Slot};
use super::doorbell::Beacon;
use super::mapping::MapRW;
use crate::vocab::Array;

/// Where a worker's mappings and stack are, to tell what a fault address is.
#[derive(Clone, Debug)]
pub(super) struct AddressMap {
    pub(super) arrays: [Range<usize>; 3],
    /// The element index at the start of each mapping.
    pub(super) first: [usize; 3],
    pub(super) elem: usize,
}

static SLOT: AtomicPtr<Slot> = AtomicPtr::new(std::ptr::null_mut());
// The coordinator's bell, rung by a dying worker; set and cleared with SLOT.
static BELL: AtomicPtr<Beacon> = AtomicPtr::new(std::ptr::null_mut());
// a, b, c: start, end, first index; then elem, stack low, stack guard low.
static MAP: [AtomicUsize; 12] = [const { AtomicUsize::new(0) }; 12];

/// Records faults into a worker's slot while alive (see the module docs).
///
/// It owns a share of the control block's mapping, so the slot the handler
/// writes to stays mapped for as long as the handler may write to it: even
/// a recorder that is forgotten (`mem::forget`) leaves the handler writing
/// into live memory — the mapping is then leaked with it, never unmapped
/// under it.
#[derive(Debug)]
pub(crate) struct FaultRecorder {
    _control: Arc<MapRW>,
}

impl Drop for FaultRecorder {
    fn drop(&mut self) {
        // Before the mapping can go: the handler stops writing into it.
        SLOT.store(std::ptr::null_mut(), Ordering::SeqCst);
        BELL.store(std::ptr::null_mut(), Ordering::SeqCst);
    }
}

impl FaultRecorder {
    /// Installs the recorder for this process, on an alternate signal
    /// stack, writing into slot `id` of the control block that `control`
    /// maps (with `slots` slots).
    pub(super) fn install(
        control: Arc<MapRW>,
        slots: usize,
        id: usize,
        map: &AddressMap,
    ) -> std::io::Result<FaultRecorder> {
        assert!(id < slots, "a slot of the control block");
        ensure_alternate_stack()?;
        let (stack_low, guard_low) = stack_bounds();
        let values = [
            map.arrays[0].start,
            map.arrays[0].end,
            map.first[0],
            map.arrays[1].start,
            map.arrays[1].end,
            map.first[1],
            map.arrays[2].start,
            map.arrays[2].end,
            map.first[2],
            map.elem.max(1),
            stack_low,
            guard_low,
        ];
        for (cell, v) in MAP.iter().zip(values) {
            cell.store(v, Ordering::SeqCst);
        }
        assert!(
            super::control::control_bytes(slots).is_some_and(|b| b <= control.len()),
            "the mapping holds the slots"
        );
        // SAFETY: `control` maps the whole control block read-write (its
        // length checked above) for as long as the Arc lives, page-aligned.
        let blocks = unsafe { Control::from_raw(control.ptr().as_ptr(), slots) };
        let slot: *const Slot = blocks.slot(id);
        let bell: *const Beacon = blocks.done_bell();
        BELL.store(bell.cast_mut(), Ordering::SeqCst);
        SLOT.store(slot.cast_mut(), Ordering::SeqCst);
        for sig in [libc::SIGSEGV, libc::SIGBUS] {
            install(sig, on_fault)?;
        }
        Ok(FaultRecorder { _control: control })
    }
}

/// Records in this worker's slot that it stops now (its panic hook calls
/// it), while a [`FaultRecorder`] is installed; otherwise does nothing.
pub(crate) fn note_stopping() {
    let slot = SLOT.load(Ordering::SeqCst);
    if !slot.is_null() {
        // SAFETY: `SLOT` is set only while a FaultRecorder lives (or was
        // forgotten), whose share of the mapping keeps the slot mapped; it
        // clears `SLOT` before that share goes, and a worker drops its
        // recorder only on its way out, after its last fault can strike.
        unsafe { &*slot }.doorbell.note_stopping();
    }
    ring_the_coordinator();
}

/// Wakes the coordinator (async-signal-safe: an atomic add and a futex
/// wake), so that it looks at this dying worker at once.
fn ring_the_coordinator() {
    let bell = BELL.load(Ordering::SeqCst);
    if !bell.is_null() {
        // SAFETY: `BELL` is set and cleared with `SLOT` (set before it,
        // cleared after it), and points into the same control block
        // mapping, which the recorder keeps mapped as `SLOT`'s comment says.
        unsafe { &*bell }.bump_and_wake_all();
    }
}

/// The low end of this thread's stack and the lowest address a stack
/// overflow can fault at (the kernel's guard gap below it).
fn stack_bounds() -> (usize, usize) {
    // SAFETY: a zeroed pthread_attr_t is what pthread_getattr_np expects to
    // initialise; on success we read the stack's bounds and destroy it.
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) != 0 {
            return (0, 0);
        }
        let mut addr: *mut libc::c_void = std::ptr::null_mut();
        let mut size: libc::size_t = 0;
        let ok = libc::pthread_attr_getstack(&attr, &mut addr, &mut size) == 0;
        libc::pthread_attr_destroy(&mut attr);
        if !ok {
            return (0, 0);
        }
        let low = addr as usize;
        // Linux keeps a gap of stack_guard_gap (256 pages by default)
        // below a growing stack; a thread's guard page is within it too.
        (low, low.saturating_sub(4 << 20))
    }
}

/// Gives this thread an alternate signal stack unless it has one already
/// (std gives threads it starts one; a process's main thread may not have).
fn ensure_alternate_stack() -> std::io::Result<()> {
    const SIZE: usize = 64 * 1024;
    // SAFETY: querying with a null new stack only reads the current one
    // into `old`, a valid stack_t on our stack.
    let has_one = unsafe {
        let mut old: libc::stack_t = std::mem::zeroed();
        libc::sigaltstack(std::ptr::null(), &mut old) == 0 && old.ss_flags & libc::SS_DISABLE == 0
    };
    if has_one {
        return Ok(());
    }
    let stack: &'static mut [u8] = Box::leak(vec![0u8; SIZE].into_boxed_slice());
    let new = libc::stack_t { ss_sp: stack.as_mut_ptr().cast(), ss_flags: 0, ss_size: SIZE };
    // SAFETY: `new` describes a leaked, never freed buffer of SIZE bytes,
    // which stays valid for the life of the process, as an alternate stack
    // must.
    if unsafe { libc::sigaltstack(&new, std::ptr::null_mut()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

type Handler = extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void);

/// Installs `handler` for `sig`; returns the action it replaced.
fn install(sig: libc::c_int, handler: Handler) -> std::io::Result<libc::sigaction> {
    // SAFETY: a zeroed sigaction is a valid starting value; we set the
    // handler (an `extern "C" fn(c_int, *mut siginfo_t, *mut c_void)`) and
    // flags. SA_RESETHAND restores the default action on entry, so the
    // handler's own `raise` ends the process with the original signal;
    // SA_ONSTACK runs it on the alternate stack, where a stack overflow
    // still leaves room. `old` is a valid out-pointer.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        let mut old: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler as *const () as libc::sighandler_t;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_RESETHAND | libc::SA_NODEFER | libc::SA_ONSTACK;
        libc::sigemptyset(&mut action.sa_mask);
        if libc::sigaction(sig, &action, &mut old) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(old)
    }
}

/// What the address `addr` is, from the recorded map.
fn site_of(addr: usize) -> FaultSite {
    let m: [usize; 12] = std::array::from_fn(|i| MAP[i].load(Ordering::SeqCst));
    let elem = m[9].max(1);
    for (k, array) in Array::ALL.into_iter().enumerate() {
        let (lo, hi, first) = (m[3 * k], m[3 * k + 1], m[3 * k + 2]);
        if (lo..hi).contains(&addr) {
            return FaultSite::Array(array, (first + (addr - lo) / elem) as u64);
        }
    }
    let (stack_low, guard_low) = (m[10], m[11]);
    if stack_low != 0 && (guard_low..stack_low + 4096).contains(&addr) {
        return FaultSite::StackGuard;
    }
    FaultSite::Elsewhere
}

extern "C" fn on_fault(sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo_t for an SA_SIGINFO handler
    // of SIGSEGV/SIGBUS, whose si_addr is the faulting address.
    let (addr, code) = unsafe { ((*info).si_addr() as usize, (*info).si_code) };
    // SAFETY: as above; si_pid is meaningful for the user-sent codes (≤ 0).
    let sender = unsafe { if code <= 0 { (*info).si_pid() as usize } else { 0 } };
    let slot = SLOT.load(Ordering::SeqCst);
    if !slot.is_null() {
        // SAFETY: `SLOT` is set only while a FaultRecorder lives (or was
        // forgotten), and the recorder's share of the mapping keeps the slot
        // mapped as long as that. Only atomic stores follow, which are
        // async-signal-safe.
        let slot = unsafe { &*slot };
        // A signal another process sent has no address: record its sender.
        let (site, index) = if code <= 0 { (0, 0) } else { site_of(addr).encode() };
        slot.fault_addr.store(if code <= 0 { sender } else { addr } as u64, Ordering::SeqCst);
        slot.fault_code.store(code as u32, Ordering::SeqCst);
        slot.fault_index.store(index, Ordering::SeqCst);
        slot.fault_site.store(site, Ordering::SeqCst);
        slot.fault_signal.store(sig as u32, Ordering::SeqCst);
    }
    note_stopping();
    // SAFETY: raise is async-signal-safe; SA_RESETHAND restored the default
    // action, so this ends the process with `sig`.
    unsafe {
        libc::raise(sig);
    }
}

/// A store of `bits` (`size` bytes) at `addr`, in one machine instruction.
///
/// # Safety
/// The caller knows the store traps (the address is in a read-only mapping
/// or not mapped at all), so that it never completes.
pub(super) unsafe fn trapping_store(addr: usize, bits: u64, size: usize) {
    // SAFETY: the caller guarantees the instruction traps; no memory that
    // Rust code can observe is changed.
    unsafe {
        #[cfg(target_arch = "x86_64")]
        if size == 8 {
            std::arch::asm!("mov qword ptr [{a}], {v}", a = in(reg) addr, v = in(reg) bits, options(nostack));
        } else {
            std::arch::asm!("mov dword ptr [{a}], {v:e}", a = in(reg) addr, v = in(reg) bits, options(nostack));
        }
        #[cfg(target_arch = "aarch64")]
        if size == 8 {
            std::arch::asm!("str {v}, [{a}]", a = in(reg) addr, v = in(reg) bits, options(nostack));
        } else {
            std::arch::asm!("str {v:w}, [{a}]", a = in(reg) addr, v = in(reg) bits, options(nostack));
        }
    }
}

/// The `segv` fault: a store through a wild pointer (into the never-mapped
/// first page), as a buggy native extension would do. Never returns: the
/// process dies of SIGSEGV.
pub(crate) fn wild_store() -> ! {
    // SAFETY: page zero is never mapped (vm.mmap_min_addr is at least one
    // page), so the store traps.
    unsafe { trapping_store(0x10, 0xDEAD_BEEF, 8) };
    // Unreachable in practice; should the store ever complete, stop anyway.
    std::process::abort()
}

/// In threads mode: when a worker thread calls `exit()`, says so on the way
/// out (the whole process exits with it, coordinator included).
pub(crate) fn announce_exit_from_workers() {
    extern "C" fn on_exit() {
        let me = std::thread::current();
        if let Some(name) = me.name().and_then(|n| n.strip_prefix("vecpar-worker-")) {
            crate::diag::line(
                "",
                format!(
                    "worker thread {name} called exit(): threads share one process, so the coordinator and every \
                     other worker exit with it (this is what --mode procs isolates)"
                ),
            );
            crate::fault::Ending::WorkerThreadExit.announce();
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
/// Whether the fatal-signal handler also writes its typed ending.
static ENDING_WANTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// In threads mode, while the guard lives: when a worker thread dies of a
/// fault (SIGSEGV, SIGABRT, SIGILL, SIGFPE, SIGBUS), the process prints one
/// line naming the signal and `context` before it dies of it. Dropping the
/// guard ends that, so that a later run in the same process (a sweep's next
/// point) is not described as a threads run.
pub(crate) fn announce_fatal_signals(context: &'static str) -> FatalSignals {
    ENDING_WANTED.store(crate::fault::Ending::wanted(), Ordering::SeqCst);
    LAST_WORDS_LEN.store(context.len(), Ordering::SeqCst);
    LAST_WORDS.store(context.as_ptr() as *mut u8, Ordering::SeqCst);
    FatalSignals(())
}

/// The fatal-signal announcement of a threads run; see
/// [`announce_fatal_signals`].
#[derive(Debug)]
pub(crate) struct FatalSignals(());

impl Drop for FatalSignals {
    fn drop(&mut self) {
        LAST_WORDS.store(std::ptr::null_mut(), Ordering::SeqCst);
    }
}

/// The worker threads of this process (their kernel thread ids), so that a
/// fault handler can tell a worker thread's fault from another thread's.
static WORKER_TIDS: [AtomicI32; 4096] = [const { AtomicI32::new(0) }; 4096];

/// Marks the calling thread as a worker thread while the guard lives.
#[derive(Debug)]
pub(crate) struct WorkerThread(Option<usize>);

impl WorkerThread {
    /// Registers the calling thread.
    pub(crate) fn register() -> WorkerThread {
        let tid = nix::unistd::gettid().as_raw();
        let slot =
            WORKER_TIDS.iter().position(|c| c.compare_exchange(0, tid, Ordering::SeqCst, Ordering::SeqCst).is_ok());
        WorkerThread(slot)
    }
}

impl Drop for WorkerThread {
    fn drop(&mut self) {
        if let Some(i) = self.0 {
            WORKER_TIDS[i].store(0, Ordering::SeqCst);
        }
    }
}

/// Whether thread `tid` is a registered worker thread (async-signal-safe).
fn is_worker_thread(tid: i32) -> bool {
    WORKER_TIDS.iter().any(|c| c.load(Ordering::SeqCst) == tid)
}

/// Appends bytes to a fixed buffer (async-signal-safe formatting).
struct Line {
    buf: [u8; 512],
    len: usize,
}

impl Line {
    fn new() -> Line {
        Line { buf: [0; 512], len: 0 }
    }

    fn put(&mut self, bytes: &[u8]) {
        let n = bytes.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&bytes[..n]);
        self.len += n;
    }

    fn dec(&mut self, v: i32) {
        let mut digits = [0u8; 12];
        let mut n = v.unsigned_abs();
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        if v < 0 {
            self.put(b"-");
        }
        self.put(&digits[i..]);
    }

    fn hex(&mut self, v: usize) {
        let mut digits = [0u8; 16];
        for (i, d) in digits.iter_mut().enumerate() {
            *d = b"0123456789abcdef"[(v >> ((15 - i) * 4)) & 0xf];
        }
        let first = digits.iter().position(|&d| d != b'0').unwrap_or(15);
        self.put(b"0x");
        self.put(&digits[first..]);
    }

    fn write(&self) {
        // SAFETY: write(2) is async-signal-safe; `buf[..len]` is initialised.
        unsafe {
            libc::write(2, self.buf.as_ptr().cast(), self.len);
        }
    }
}

/// The typed ending of a worker thread's fatal signal, as
/// [`crate::fault::Ending`] serialises it, built without allocating.
fn ending_line(sig: libc::c_int) -> Line {
    let mut line = Line::new();
    line.put(crate::fault::ENDING_PREFIX.as_bytes());
    line.put(b"{\"ending\":\"worker-thread-signal\",\"signal\":");
    line.dec(sig);
    line.put(b"}\n");
    line
}

/// A worker thread's last word: the signal, where, and the lesson.
fn announce_worker_thread_death(sig: libc::c_int, info: *mut libc::siginfo_t) {
    let mut line = Line::new();
    line.put(b"vecpar-coord: a worker thread died of ");
    line.put(match sig {
        libc::SIGSEGV => b"SIGSEGV".as_slice(),
        libc::SIGABRT => b"SIGABRT (abort)",
        libc::SIGILL => b"SIGILL",
        libc::SIGFPE => b"SIGFPE",
        libc::SIGBUS => b"SIGBUS",
        _ => b"a fatal signal",
    });
    if sig == libc::SIGSEGV {
        // SAFETY: valid siginfo for an SA_SIGINFO handler of SIGSEGV.
        let addr = unsafe { (*info).si_addr() as usize };
        line.put(b" at address ");
        line.hex(addr);
    }
    let (p, n) = (LAST_WORDS.load(Ordering::SeqCst), LAST_WORDS_LEN.load(Ordering::SeqCst));
    if !p.is_null() {
        line.put(b": ");
        // SAFETY: `p`/`n` come from a `&'static str` in announce_fatal_signals.
        line.put(unsafe { std::slice::from_raw_parts(p, n) });
    }
    line.put(b"\n");
    line.write();
    if ENDING_WANTED.load(Ordering::SeqCst) {
        ending_line(sig).write();
    }
}

/// The signals that are faults when the kernel raises them, and that a
/// coordinator handles ([`catch_fault_signals`]).
const FAULT_SIGNALS: [libc::c_int; 7] =
    [libc::SIGBUS, libc::SIGSEGV, libc::SIGILL, libc::SIGFPE, libc::SIGABRT, libc::SIGTRAP, libc::SIGSYS];

/// The handler each of [`FAULT_SIGNALS`] had before (its address and
/// flags), to hand what is not ours to.
static PREVIOUS: [AtomicUsize; 7] = [const { AtomicUsize::new(0) }; 7];
static PREVIOUS_FLAGS: [AtomicI32; 7] = [const { AtomicI32::new(0) }; 7];

/// In the coordinator: handles [`FAULT_SIGNALS`] (see the module docs).
pub(crate) fn catch_fault_signals() -> std::io::Result<()> {
    ensure_alternate_stack()?;
    for (i, &sig) in FAULT_SIGNALS.iter().enumerate() {
        // SAFETY: as in `install`, without SA_RESETHAND (a second signal
        // sent from outside is handled as the first was) and without
        // SA_NODEFER (a fault inside the handler ends the process).
        let old = unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            let mut old: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_coordinator_signal as *const () as libc::sighandler_t;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut action.sa_mask);
            if libc::sigaction(sig, &action, &mut old) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            old
        };
        PREVIOUS_FLAGS[i].store(old.sa_flags, Ordering::SeqCst);
        PREVIOUS[i].store(old.sa_sigaction, Ordering::SeqCst);
    }
    Ok(())
}

/// Handlers for the terminating signals `signals`, which stay blocked in
/// every thread but one that spawns a child (the child then starts with
/// none blocked, as a program expects): should one arrive at that thread
/// meanwhile, it is forwarded to the signal thread like a fault signal
/// another process sent.
pub(crate) fn catch_terminating_signals(signals: &[i32]) -> std::io::Result<()> {
    for &sig in signals {
        // SAFETY: installs a handler that only calls `forward` (an atomic
        // store and kill(2), both async-signal-safe); the action struct is
        // fully initialised (zeroed, then its fields set).
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_terminating_signal as *const () as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            if libc::sigaction(sig, &action, std::ptr::null_mut()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

extern "C" fn on_terminating_signal(sig: libc::c_int) {
    crate::signals::forward(sig);
}

/// Whether a signal was sent by another process (`kill`, `sigqueue`,
/// `tgkill` from elsewhere) rather than raised by the kernel for a fault or
/// by this process itself (`abort`).
fn sent_from_outside(info: *mut libc::siginfo_t) -> bool {
    // SAFETY: a valid siginfo for an SA_SIGINFO handler; si_pid is
    // meaningful for the user-sent codes (≤ 0) it is read for.
    unsafe { (*info).si_code <= 0 && (*info).si_pid() != libc::getpid() }
}

extern "C" fn on_coordinator_signal(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    if sent_from_outside(info) {
        // Like SIGTERM: the signal thread stops the run in order.
        crate::signals::forward(sig);
        return;
    }
    // SAFETY: valid siginfo for an SA_SIGINFO handler.
    let code = unsafe { (*info).si_code };
    if sig == libc::SIGBUS && code > 0 {
        segment_lost(info);
    }
    let threads_run = !LAST_WORDS.load(Ordering::SeqCst).is_null();
    if threads_run && sig != libc::SIGTRAP && sig != libc::SIGSYS && is_worker_thread(nix::unistd::gettid().as_raw()) {
        announce_worker_thread_death(sig, info);
    }
    hand_on(sig, info, ctx);
}

/// What the coordinator does with a fault that is not a sent signal and
/// not a lost segment: what the handler before did (Rust's names a stack
/// overflow), else the default action — the process dies of the signal.
fn hand_on(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let i = FAULT_SIGNALS.iter().position(|&s| s == sig).unwrap_or(0);
    let (old, flags) = (PREVIOUS[i].load(Ordering::SeqCst), PREVIOUS_FLAGS[i].load(Ordering::SeqCst));
    if old != libc::SIG_DFL && old != libc::SIG_IGN {
        // SAFETY: `old` is the handler the kernel had for `sig`, installed
        // with `flags`: a three-argument one with SA_SIGINFO, else a
        // one-argument one; called as the kernel would call it.
        unsafe {
            if flags & libc::SA_SIGINFO != 0 {
                let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) = std::mem::transmute(old);
                f(sig, info, ctx);
            } else {
                let f: extern "C" fn(libc::c_int) = std::mem::transmute(old);
                f(sig);
            }
        }
        return;
    }
    // SAFETY: restoring the default action, then (for a raised signal,
    // which returning would not repeat) raising it again: the process ends
    // with `sig`. A hardware fault repeats on return and ends it the same.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        if (*info).si_code <= 0 {
            libc::raise(sig);
        }
    }
}

/// A SIGBUS raised by the kernel on a page of the segment: another process
/// truncated it under the run (a memfd is sealed against that; a POSIX
/// object cannot be). One line, every worker killed, exit 1.
fn segment_lost(info: *mut libc::siginfo_t) -> ! {
    crate::signals::kill_children_now();
    // SAFETY: valid siginfo for an SA_SIGINFO handler of SIGBUS.
    let addr = unsafe { (*info).si_addr() as usize };
    let mut line = Line::new();
    line.put(b"vecpar-coord: error: SIGBUS at ");
    line.hex(addr);
    line.put(
        b": the shared segment's pages were taken away under the run (another process truncated it); \
          the run stopped, its workers were killed, nothing was validated\n",
    );
    line.write();
    // SAFETY: _exit is async-signal-safe and ends the process at once.
    unsafe { libc::_exit(1) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_handlers_ending_is_the_typed_one() {
        for sig in [libc::SIGSEGV, libc::SIGABRT, 1, 64] {
            let line = ending_line(sig);
            let text = std::str::from_utf8(&line.buf[..line.len]).unwrap();
            assert_eq!(
                crate::fault::Ending::of_line(text),
                Some(crate::fault::Ending::WorkerThreadSignal { signal: sig })
            );
        }
    }
}
