//! How the schema's enums are spelled in YAML.

/// The schema's enums are spelled in YAML as fixed lowercase keywords. This table
/// is the one place that spelling lives: reading, `Display` and `Serialize`
/// all go through it, so what is printed can always be read back.
pub(super) trait Keyword: Copy + PartialEq + 'static {
    /// What the field is called in messages.
    const WHAT: &'static str;
    /// Every value, in the order messages list them.
    const ALL: &'static [Self];
    fn keyword(self) -> &'static str;
}

/// `Display` and `Serialize` for `Keyword` types, both through the keyword.
macro_rules! keyword_display_and_serialize {
    ($($ty:ty),+) => {$(
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.keyword())
            }
        }

        impl Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.keyword())
            }
        }
    )+};
}

pub(super) use keyword_display_and_serialize;

/// The `Keyword` table of an enum: what messages call it, then each variant
/// and its spelling, in the order messages list them.
macro_rules! keywords {
    ($ty:ty, $what:literal { $($variant:ident => $word:literal,)+ }) => {
        impl Keyword for $ty {
            const WHAT: &'static str = $what;
            const ALL: &'static [Self] = &[$(Self::$variant),+];
            fn keyword(self) -> &'static str {
                match self {
                    $(Self::$variant => $word,)+
                }
            }
        }
    };
}

pub(super) use keywords;
