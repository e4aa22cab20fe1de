//! ChanServ: registered channels, access lists, auto-op/voice and topic retention, as an
//! unsplit services plugin. (Being written.)
