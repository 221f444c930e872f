package bus

// SameStreamConfig exposes sameStreamConfig to the external tests.
var SameStreamConfig = sameStreamConfig
