//! The [`vocabulary!`] macro: a closed set of names as a `Copy` enum, with
//! its ids, `Display`, `FromStr` and serde (both ways) generated from one
//! list, and [`UnknownName`], the error for a name not in the list.

use std::fmt;

/// A name that is not one of a vocabulary's ids, e.g.
/// `unknown kind "redis-lau", expected one of memory, redis-lua, ...`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {value:?}, expected one of {}", List(.expected))]
pub struct UnknownName {
    /// What the name was meant to be (`kind`, `scenario`, `value`).
    pub what: &'static str,
    /// The name as given.
    pub value: String,
    /// Every valid id, in declaration order.
    pub expected: &'static [&'static str],
}

/// Ids joined with `", "`.
pub(crate) struct List<'a>(pub(crate) &'a [&'a str]);

impl fmt::Display for List<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, id) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(id)?;
        }
        Ok(())
    }
}

/// Declares a vocabulary enum: `Variant = "id"` per value, in the order
/// error messages list them. `$what` names the thing in [`UnknownName`].
macro_rules! vocabulary {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident ($what:literal) {
            $( $(#[$vmeta:meta])* $variant:ident = $id:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: [Self; [$($id),+].len()] = [$(Self::$variant),+];

            /// Every id, in the order of [`ALL`](Self::ALL).
            pub const IDS: [&'static str; [$($id),+].len()] = [$($id),+];

            /// The id, as written in files, flags and reports.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( Self::$variant => $id, )+
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::UnknownName;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::ALL
                    .into_iter()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| $crate::UnknownName {
                        what: $what,
                        value: s.to_owned(),
                        expected: &Self::IDS,
                    })
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct Visitor;
                impl ::serde::de::Visitor<'_> for Visitor {
                    type Value = $name;

                    fn expecting(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                        write!(f, "one of {}", $crate::vocabulary::List(&$name::IDS))
                    }

                    fn visit_str<E: ::serde::de::Error>(self, s: &str) -> Result<$name, E> {
                        s.parse().map_err(E::custom)
                    }
                }
                d.deserialize_str(Visitor)
            }
        }
    };
}
