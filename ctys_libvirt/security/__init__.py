"""What a conf may make us do: trust of a conf, ARGSADD policy, media and binary checks
(design.md §10).  A conf is data; the rights it acts with are decided here, once."""
