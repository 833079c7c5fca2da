//! Every kernel's meaning, written once.
//!
//! [`with_ops!`] holds the table; everything else is generated from it: the
//! [`Op`](super::Op) enum and its metadata (name, formula, arrays read and
//! written, STREAM byte counting), the scalar oracle, the validation loop,
//! and the kernel of every SIMD level. A formula is a small prefix
//! expression over the arrays `a`, `b`, `c` and the scalar `s`:
//! `(add x y)` and `(mul x y)`, each one correctly rounded IEEE operation,
//! never fused, so every SIMD level computes bit for bit what the oracle
//! computes.
//!
//! To add a kernel: one line in the table, plus its tests (see the README's
//! "Layout of the code").

/// The kernel table. Each line: variant, name, shape (`write DEST` or
/// `reduce`), the arrays read, the formula. For a `reduce` kernel the
/// formula is the term summed over the elements, a product of two arrays
/// (its compensated reference computes the products exactly).
///
/// Everything downstream is derived from a line's shape and reads: a kernel
/// that writes an array it reads updates it in place (its rounds accumulate,
/// and a lost worker's chunk is rebuilt by replaying them), one that does
/// not can be repeated freely; which arrays a worker maps writable; which
/// arrays validation digests; STREAM's byte count.
///
/// Invokes `$callback!{ (ARGS) s; LINES }`, where `s` is the scalar's name
/// as the formulas spell it (macro hygiene: a callback binds the table's
/// own identifiers).
macro_rules! with_ops {
    ($callback:ident!($($args:tt)*)) => {
        $callback! { ($($args)*) s;
            Copy    copy    write c [a]       a;
            Scale   scale   write c [a]       (mul s a);
            Add     add     write c [a b]     (add a b);
            Triad   triad   write c [a b]     (add a (mul s b));
            Dot     dot     reduce  [a b]     (mul a b);
            Nstream nstream write a [a b c]   (add a (add b (mul s c)));
            Fma     fma     write c [a b c]   (add (mul a b) c);
        }
    };
}

/// Lowers a formula to calls of `add` and `mul`.
macro_rules! lower {
    ([$add:path, $mul:path] (add $x:tt $y:tt)) => {
        $add($crate::kernel::ops::lower!([$add, $mul] $x), $crate::kernel::ops::lower!([$add, $mul] $y))
    };
    ([$add:path, $mul:path] (mul $x:tt $y:tt)) => {
        $mul($crate::kernel::ops::lower!([$add, $mul] $x), $crate::kernel::ops::lower!([$add, $mul] $y))
    };
    ([$add:path, $mul:path] $v:ident) => {
        $v
    };
}

/// A formula as people write it: `a + s·b`, parentheses where the order of
/// evaluation is not left to right.
macro_rules! pretty {
    ((add $x:tt $y:tt)) => {
        concat!($crate::kernel::ops::pretty!($x), " + ", $crate::kernel::ops::pretty!(@right $y))
    };
    ((mul $x:tt $y:tt)) => {
        concat!($crate::kernel::ops::pretty!(@factor $x), "·", $crate::kernel::ops::pretty!(@factor $y))
    };
    (@right (add $x:tt $y:tt)) => {
        concat!("(", $crate::kernel::ops::pretty!((add $x $y)), ")")
    };
    (@right $e:tt) => {
        $crate::kernel::ops::pretty!($e)
    };
    (@factor (add $x:tt $y:tt)) => {
        concat!("(", $crate::kernel::ops::pretty!((add $x $y)), ")")
    };
    (@factor $e:tt) => {
        $crate::kernel::ops::pretty!($e)
    };
    ($v:ident) => {
        stringify!($v)
    };
}

/// The whole formula of a table line: `c = a + b`, `s = Σ a·b`.
macro_rules! statement {
    (write $dest:ident; $f:tt) => {
        concat!(stringify!($dest), " = ", $crate::kernel::ops::pretty!($f))
    };
    (reduce; $f:tt) => {
        concat!("s = Σ ", $crate::kernel::ops::pretty!($f))
    };
}

/// One of three identifiers by array name (hygiene: the table's `a` selects
/// the caller's own `$a`).
macro_rules! pick {
    ($a:ident, $b:ident, $c:ident; a) => {
        $a
    };
    ($a:ident, $b:ident, $c:ident; b) => {
        $b
    };
    ($a:ident, $b:ident, $c:ident; c) => {
        $c
    };
}

/// The array a table line writes.
macro_rules! written {
    (write a) => {
        Some(crate::vocab::Array::A)
    };
    (write c) => {
        Some(crate::vocab::Array::C)
    };
    (reduce) => {
        None
    };
}

pub(crate) use {lower, pick, pretty, statement, with_ops, written};
