//! Files lb-userspace reads, as they ship: the example configuration in
//! `deploy/` and the ipvsadm corpus in `tests/ipvsadm-corpus/`. No root
//! needed; the tests that load BPF live in lb-tests' `dataplane` binary.

mod deploy_example;
mod ipvsadm_corpus;
