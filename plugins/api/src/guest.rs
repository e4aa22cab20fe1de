//! The WIT types of `unsplit:services@1.0.0` as wit-bindgen generates them for guests,
//! and their conversions to and from this crate's types. Both guest components (the IRC
//! logic and the plugins) map the WIT interfaces to these modules (`with`), so the
//! conversions exist once.

// The canonical-ABI glue that wit-bindgen generates is unsafe by nature.
#![allow(unsafe_code)]

wit_bindgen::generate!({
    inline: "package unsplit:guest-types; world types { import unsplit:services/types@1.0.0; }",
    path: ["../../wit/irc-1.0.0", "../../wit/services-1.0.0"],
    generate_all,
});

pub use unsplit::irc::types as irc;
pub use unsplit::services::types as wit;

crate::wit_conversions!(wit);
