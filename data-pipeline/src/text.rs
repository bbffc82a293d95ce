//! [`Str`], the span model's string: borrowed from the input buffer or owned, in two words.
//!
//! `Cow<str>` takes three words (24 bytes) because its owned side is a `String` with a capacity.
//! A span holds a dozen or more strings and every meta entry holds two, so that third word is a
//! third of the memory normalization, obfuscation and encoding stream through. `Str` is a pointer
//! and a length whose top bit says "owned"; the owned bytes are a `Box<str>` (no spare
//! capacity). A meta entry is 32 bytes instead of 48.
//!
//! It reads like a `Cow<str>`: it derefs to `str`, compares and hashes as its text, and converts
//! from and to `&str`, `String` and `Cow<str>`. Where code matched `Cow::Borrowed`, it calls
//! [`Str::as_borrowed`].

use std::borrow::{Borrow, Cow};
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::ops::Deref;
use std::ptr::NonNull;

/// Top bit of a length: the bytes are an owned `Box<str>`. No allocation or slice reaches
/// `isize::MAX` bytes, so a real length never has it set.
const OWNED: usize = 1 << (usize::BITS - 1);

/// A string that is borrowed from the input buffer (`'a`) or owned; two words.
pub struct Str<'a> {
    text: Text,
    /// Borrows like `&'a str`. The lifetime is only here, not in [`Text`], whose drop never
    /// reads borrowed bytes: a `Str` may be dropped after its buffer, as a `Cow<str>` may.
    _buffer: PhantomData<&'a str>,
}

/// The pointer and tagged length behind a [`Str`]; frees the bytes when they are owned.
struct Text {
    /// Start of the UTF-8 bytes (never null: an empty string borrows `""`).
    ptr: NonNull<u8>,
    /// Length in bytes, with [`OWNED`] set when `ptr` came from `Box::<str>::into_raw`.
    len: usize,
}

impl Text {
    /// Length in bytes.
    #[inline]
    fn len(&self) -> usize {
        self.len & !OWNED
    }

    /// True when the bytes are an owned box.
    #[inline]
    fn is_owned(&self) -> bool {
        self.len & OWNED != 0
    }

    /// The owned bytes as the box they came from.
    ///
    /// # Safety
    /// `self` must be owned, and nothing may use or free its bytes afterwards.
    #[inline]
    unsafe fn take_box(&self) -> Box<str> {
        let raw = std::ptr::slice_from_raw_parts_mut(self.ptr.as_ptr(), self.len());
        // SAFETY: the caller's contract; the bytes are valid UTF-8 from a `Box<str>`.
        unsafe { Box::from_raw(raw as *mut str) }
    }
}

impl Drop for Text {
    #[inline]
    fn drop(&mut self) {
        if self.is_owned() {
            // SAFETY: owned, and `self` is gone after this.
            drop(unsafe { self.take_box() });
        }
    }
}

// SAFETY: a `Str` is either a `&str` or a `Box<str>`, both `Send` and `Sync`; nothing is shared
// between clones (an owned clone copies the bytes).
unsafe impl Send for Str<'_> {}
// SAFETY: as above; `&Str` only gives out `&str`.
unsafe impl Sync for Str<'_> {}

impl<'a> Str<'a> {
    /// Borrows `s` (no copy).
    #[inline]
    pub const fn borrowed(s: &'a str) -> Self {
        Str {
            text: Text {
                // SAFETY: a reference's pointer is never null.
                ptr: unsafe { NonNull::new_unchecked(s.as_ptr() as *mut u8) },
                len: s.len(),
            },
            _buffer: PhantomData,
        }
    }

    /// Takes ownership of `s`. Spare capacity is given back (the bytes become a `Box<str>`);
    /// an empty string borrows `""` and allocates nothing.
    #[inline]
    pub fn owned(s: String) -> Self {
        Str::from(s.into_boxed_str())
    }

    /// The text.
    #[inline]
    pub fn as_str(&self) -> &str {
        // SAFETY: `ptr` and the length come from a `&'a str` that outlives `self` or from a
        // `Box<str>` that `self` owns; both are valid UTF-8 of that length.
        unsafe {
            std::str::from_utf8_unchecked(std::slice::from_raw_parts(
                self.text.ptr.as_ptr(),
                self.text.len(),
            ))
        }
    }

    /// The length in bytes, with the top bit set when the bytes are owned: one load, no
    /// unpacking. For hot loops that only test lengths against a limit (an owned string then
    /// looks longer than any limit: the caller must treat "over" as "maybe", and check
    /// [`str::len`]) or look at their low bits. The normalizer's meta scan reads two lengths per
    /// tag; unpacking each was a tenth of a valid span's instructions (bench `normalize_spans`).
    #[inline]
    pub fn len_or_owned(&self) -> usize {
        self.text.len
    }

    /// True when the bytes are owned (a stage replaced the value, or the span was built
    /// through the API).
    #[inline]
    pub fn is_owned(&self) -> bool {
        self.text.is_owned()
    }

    /// True when the bytes are borrowed from the input buffer.
    #[inline]
    pub fn is_borrowed(&self) -> bool {
        !self.is_owned()
    }

    /// The borrowed text with the buffer's lifetime, or `None` when owned (what a match on
    /// `Cow::Borrowed` gives).
    #[inline]
    pub fn as_borrowed(&self) -> Option<&'a str> {
        if self.is_owned() {
            return None;
        }
        // SAFETY: borrowed: the bytes live for `'a`, independently of `self`.
        Some(unsafe {
            std::str::from_utf8_unchecked(std::slice::from_raw_parts(
                self.text.ptr.as_ptr(),
                self.text.len,
            ))
        })
    }

    /// The text as a `String` (no copy when owned).
    pub fn into_owned(self) -> String {
        match self.into_box() {
            Ok(b) => b.into_string(),
            Err(s) => s.to_owned(),
        }
    }

    /// The same text owned (`'static`), detached from the buffer it borrowed from.
    pub fn into_static(self) -> Str<'static> {
        match self.into_box() {
            Ok(b) => Str::from(b),
            Err(s) => Str::from(Box::<str>::from(s)),
        }
    }

    /// The same text as a `Cow<str>` (no copy).
    pub fn into_cow(self) -> Cow<'a, str> {
        match self.into_box() {
            Ok(b) => Cow::Owned(b.into_string()),
            Err(s) => Cow::Borrowed(s),
        }
    }

    /// Splits into the owned box or the borrowed slice, without dropping anything.
    fn into_box(self) -> Result<Box<str>, &'a str> {
        let this = ManuallyDrop::new(self);
        if let Some(s) = this.as_borrowed() {
            return Err(s);
        }
        // SAFETY: owned, and `ManuallyDrop` keeps `self`'s drop from freeing the bytes again.
        Ok(unsafe { this.text.take_box() })
    }
}

impl Clone for Str<'_> {
    #[inline]
    fn clone(&self) -> Self {
        if self.is_owned() {
            Str::from(Box::<str>::from(self.as_str()))
        } else {
            Str {
                text: Text {
                    ptr: self.text.ptr,
                    len: self.text.len,
                },
                _buffer: PhantomData,
            }
        }
    }
}

impl Default for Str<'_> {
    fn default() -> Self {
        Str::borrowed("")
    }
}

impl Deref for Str<'_> {
    type Target = str;
    #[inline]
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Str<'_> {
    #[inline]
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for Str<'_> {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl<'a> From<&'a str> for Str<'a> {
    #[inline]
    fn from(s: &'a str) -> Self {
        Str::borrowed(s)
    }
}

impl<'a> From<&'a String> for Str<'a> {
    fn from(s: &'a String) -> Self {
        Str::borrowed(s)
    }
}

impl From<String> for Str<'_> {
    #[inline]
    fn from(s: String) -> Self {
        Str::owned(s)
    }
}

impl From<Box<str>> for Str<'_> {
    fn from(b: Box<str>) -> Self {
        if b.is_empty() {
            return Str::borrowed("");
        }
        let len = b.len();
        let raw = Box::into_raw(b);
        Str {
            text: Text {
                // SAFETY: `Box::into_raw` never returns null.
                ptr: unsafe { NonNull::new_unchecked(raw as *mut u8) },
                len: len | OWNED,
            },
            _buffer: PhantomData,
        }
    }
}

impl<'a> From<Cow<'a, str>> for Str<'a> {
    #[inline]
    fn from(c: Cow<'a, str>) -> Self {
        match c {
            Cow::Borrowed(s) => Str::borrowed(s),
            Cow::Owned(s) => Str::owned(s),
        }
    }
}

impl From<Str<'_>> for String {
    fn from(s: Str<'_>) -> Self {
        s.into_owned()
    }
}

impl<'a> From<Str<'a>> for Cow<'a, str> {
    fn from(s: Str<'a>) -> Self {
        s.into_cow()
    }
}

impl serde::Serialize for Str<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl fmt::Debug for Str<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Str<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

impl Hash for Str<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl<'b> PartialEq<Str<'b>> for Str<'_> {
    #[inline]
    fn eq(&self, other: &Str<'b>) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Str<'_> {}

impl PartialOrd for Str<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Str<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

/// `Str == other` and `other == Str` for the string types it is compared with.
macro_rules! eq_text {
    ($($t:ty),*) => {$(
        impl PartialEq<$t> for Str<'_> {
            #[inline]
            fn eq(&self, other: &$t) -> bool {
                self.as_str() == AsRef::<str>::as_ref(other)
            }
        }
        impl PartialEq<Str<'_>> for $t {
            #[inline]
            fn eq(&self, other: &Str<'_>) -> bool {
                AsRef::<str>::as_ref(self) == other.as_str()
            }
        }
    )*};
}
eq_text!(str, &str, String, Cow<'_, str>);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_words_and_an_option_niche() {
        assert_eq!(
            std::mem::size_of::<Str<'_>>(),
            2 * std::mem::size_of::<usize>()
        );
        assert_eq!(
            std::mem::size_of::<Option<Str<'_>>>(),
            2 * std::mem::size_of::<usize>()
        );
    }

    #[test]
    fn borrowed_points_into_the_buffer() {
        let buf = String::from("service-name");
        let s = Str::borrowed(&buf[0..7]);
        assert!(s.is_borrowed());
        assert_eq!(s, "service");
        assert_eq!(s.as_ptr(), buf.as_ptr());
        assert_eq!(s.as_borrowed(), Some("service"));
        let c = s.clone();
        assert_eq!(c.as_ptr(), buf.as_ptr(), "a borrowed clone copies no bytes");
    }

    #[test]
    fn owned_round_trips_without_a_copy() {
        let mut text = String::with_capacity(64);
        text.push_str("obfuscated ?");
        let s = Str::owned(text);
        assert!(s.is_owned());
        assert_eq!(s.as_borrowed(), None);
        assert_eq!(s.len(), 12);
        let p = s.as_ptr();
        let back = s.into_owned();
        assert_eq!(back, "obfuscated ?");
        assert_eq!(back.as_ptr(), p, "into_owned reuses the box");
    }

    #[test]
    fn owned_clone_is_independent() {
        let a = Str::owned("abc".to_string());
        let b = a.clone();
        assert!(b.is_owned());
        assert_ne!(a.as_ptr(), b.as_ptr());
        drop(a);
        assert_eq!(b, "abc");
    }

    #[test]
    fn empty_is_borrowed_and_allocates_nothing() {
        assert!(Str::owned(String::new()).is_borrowed());
        assert!(Str::from(Box::<str>::from("")).is_borrowed());
        assert_eq!(Str::default(), "");
    }

    #[test]
    fn conversions_keep_the_text_and_the_side() {
        let buf = "payload";
        let c: Cow<'_, str> = Str::borrowed(buf).into();
        assert!(matches!(c, Cow::Borrowed(b) if b.as_ptr() == buf.as_ptr()));
        let c: Cow<'_, str> = Str::owned("x".into()).into();
        assert!(matches!(c, Cow::Owned(ref o) if o == "x"));
        assert!(Str::from(Cow::Borrowed(buf)).is_borrowed());
        assert!(Str::from(Cow::<str>::Owned("y".into())).is_owned());
        let st: Str<'static> = Str::borrowed(buf).into_static();
        assert!(st.is_owned());
        assert_eq!(st, buf);
        let u = "é€😀".to_string();
        assert_eq!(Str::owned(u.clone()).into_owned(), u);
    }

    #[test]
    fn compares_and_hashes_as_text() {
        use std::collections::HashSet;
        let a = Str::borrowed("k");
        let b = Str::owned("k".into());
        assert_eq!(a, b);
        assert_eq!(a, "k");
        assert_eq!("k", a);
        assert_eq!(a, *"k");
        let owned = String::from("k");
        assert_eq!(owned, b);
        assert_ne!(a, "K");
        assert!(Str::borrowed("a") < Str::owned("b".into()));
        let mut set = HashSet::new();
        set.insert(a);
        assert!(set.contains("k"));
        assert!(set.contains(&b));
        assert_eq!(format!("{b:?} {b}"), "\"k\" k");
    }
}
