//! Names of metadata keys and tensors, built on the stack.
//!
//! A block's loader looks up names it composes (`innfer.block.3.clamp`,
//! `module_list.3.subnet1.0.weight`); building each as a `String` would be an allocation that
//! cannot fail cleanly, and loading allocates only fallibly (docs/format.md §8). A [`Name`]
//! holds up to [`Name::CAPACITY`] bytes in place. A longer name (only a file's own subnet layer
//! names can make one) is kept cut short and marked, and a lookup of a cut name finds nothing,
//! so the file is refused with the name's start in the message.

use core::fmt::{self, Write};

/// A name of at most [`Name::CAPACITY`] bytes, built with [`name!`](crate::source::name!).
pub(crate) struct Name {
    bytes: [u8; Name::CAPACITY],
    len: usize,
    /// Whether the name was longer than the capacity (and is cut short).
    cut: bool,
}

impl Name {
    /// Bytes a name may have: far more than any FrEIA module path.
    pub(crate) const CAPACITY: usize = 192;

    /// `args` formatted.
    pub(crate) fn format(args: fmt::Arguments<'_>) -> Name {
        let mut name = Name {
            bytes: [0; Name::CAPACITY],
            len: 0,
            cut: false,
        };
        // The writer below never fails; a name too long is cut short and marked instead.
        let _ = name.write_fmt(args);
        name
    }

    /// The name, or `None` if it was too long to hold (no key or tensor has such a name).
    pub(crate) fn whole(&self) -> Option<&str> {
        (!self.cut).then_some(self.as_str())
    }

    pub(crate) fn as_str(&self) -> &str {
        // Only whole characters are written (see `write_str`).
        core::str::from_utf8(&self.bytes[..self.len]).unwrap_or("")
    }
}

impl Write for Name {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = Name::CAPACITY - self.len;
        let mut take = s.len().min(room);
        if take < s.len() {
            self.cut = true;
            while !s.is_char_boundary(take) {
                take -= 1;
            }
        }
        self.bytes[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take;
        Ok(())
    }
}

impl core::ops::Deref for Name {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())?;
        if self.cut {
            f.write_str("…")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// A [`Name`] from `format!`-style arguments.
macro_rules! name {
    ($($arg:tt)*) => {
        $crate::source::name::Name::format(format_args!($($arg)*))
    };
}
pub(crate) use name;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_a_name_in_place_and_marks_one_too_long() {
        let n = name!("module_list.{}.{}", 12, "subnet1.0.weight");
        assert_eq!(n.whole(), Some("module_list.12.subnet1.0.weight"));
        let long = "é".repeat(Name::CAPACITY);
        let cut = name!("x.{long}");
        assert_eq!(cut.whole(), None);
        assert!(cut.as_str().len() <= Name::CAPACITY && long.starts_with(&cut.as_str()[2..]));
        assert!(alloc::format!("{cut}").ends_with('…'));
    }
}
