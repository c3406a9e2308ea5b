//! The [`vocabulary!`](crate::vocabulary) macro: a closed set of names as a
//! `Copy` enum, with its ids, `Display`, `FromStr` and serde (both ways)
//! generated from one list, and [`UnknownName`], the error for a name not
//! in the list.

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

/// Ids joined with `", "` (used by the macro's serde messages).
#[doc(hidden)]
pub struct List<'a>(pub &'a [&'a str]);

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
/// error messages list them; `$what` names the thing in [`UnknownName`].
/// Generates `ALL`, `IDS`, `as_str`, `index` (the position in `ALL`, for
/// arrays indexed by the enum), `Display`, `FromStr` and serde both ways,
/// each a plain `match` over the list.
///
/// What a value means beyond its id (a store kind's backend, a scenario's
/// path) is a plain `match` in an `impl` next to the enum: a new value
/// without it does not compile.
///
/// ```
/// rateguard_contract::vocabulary! {
///     /// A colour.
///     pub enum Colour ("colour") {
///         /// Red.
///         Red = "red",
///         /// Green.
///         Green = "green",
///     }
/// }
///
/// impl Colour {
///     /// The RGB value.
///     const fn rgb(self) -> u32 {
///         match self {
///             Self::Red => 0xff0000,
///             Self::Green => 0x00ff00,
///         }
///     }
/// }
/// assert_eq!("green".parse::<Colour>().unwrap().rgb(), 0x00ff00);
/// assert_eq!(Colour::Green.index(), 1);
/// assert_eq!(
///     "blue".parse::<Colour>().unwrap_err().to_string(),
///     "unknown colour \"blue\", expected one of red, green"
/// );
/// ```
#[macro_export]
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

            /// The id, as written in files, flags, labels and reports.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( Self::$variant => $id, )+
                }
            }

            /// The position in [`ALL`](Self::ALL).
            pub const fn index(self) -> usize {
                self as usize
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
                match s {
                    $( $id => Ok(Self::$variant), )+
                    _ => Err($crate::UnknownName {
                        what: $what,
                        value: s.to_owned(),
                        expected: &Self::IDS,
                    }),
                }
            }
        }

        impl $crate::__serde::Serialize for $name {
            fn serialize<S>(&self, s: S) -> Result<S::Ok, S::Error>
            where
                S: $crate::__serde::Serializer,
            {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> $crate::__serde::Deserialize<'de> for $name {
            fn deserialize<D>(d: D) -> Result<Self, D::Error>
            where
                D: $crate::__serde::Deserializer<'de>,
            {
                struct Visitor;
                impl $crate::__serde::de::Visitor<'_> for Visitor {
                    type Value = $name;

                    fn expecting(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                        write!(f, "one of {}", $crate::__List(&$name::IDS))
                    }

                    fn visit_str<E>(self, s: &str) -> Result<$name, E>
                    where
                        E: $crate::__serde::de::Error,
                    {
                        s.parse().map_err(E::custom)
                    }
                }
                d.deserialize_str(Visitor)
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use std::fmt::{Debug, Display};
    use std::str::FromStr;

    use serde::de::DeserializeOwned;
    use serde::Serialize;

    use crate::{OnError, RuntimeMode, StoreKind};

    /// Every value survives text and serde, and sits at its index.
    fn round_trips<T>(all: &[T])
    where
        T: Copy + Eq + Debug + Display + FromStr + Serialize + DeserializeOwned,
        T::Err: Debug,
    {
        for value in all {
            assert_eq!(value.to_string().parse::<T>().unwrap(), *value);
            let json = serde_json::to_string(value).unwrap();
            assert_eq!(json, format!("\"{value}\""));
            assert_eq!(serde_json::from_str::<T>(&json).unwrap(), *value);
        }
    }

    #[test]
    fn every_vocabulary_round_trips() {
        round_trips(&StoreKind::ALL);
        round_trips(&OnError::ALL);
        round_trips(&RuntimeMode::ALL);
        for (i, id) in StoreKind::ALL.into_iter().enumerate() {
            assert_eq!(id.index(), i);
        }
    }

    #[test]
    fn errors_list_the_ids() {
        assert_eq!(
            "per_core".parse::<RuntimeMode>().unwrap_err().to_string(),
            "unknown value \"per_core\", expected one of per-core, multi-thread"
        );
        let err = serde_json::from_str::<StoreKind>("\"redis-lau\"").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown kind \"redis-lau\", expected one of memory, redis-lua, redis-pipelined, fred-cluster, redis-leased at line 1 column 11"
        );
        let err = serde_json::from_str::<OnError>("5").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid type: integer `5`, expected one of allow, deny, local"),
            "{err}"
        );
    }
}
