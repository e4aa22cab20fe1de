//! NickServ: accounts, nick protection and SASL PLAIN, as an unsplit services plugin.
//! (Being written.)
