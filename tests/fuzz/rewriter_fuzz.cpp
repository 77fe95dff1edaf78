// Owns the fuzz target of the named prepared statement rewriter: a client's Parse/Bind/Describe/Close (and
// other messages) in any order and form, with server replies interleaved, against a small server cache
// (the driver, rewriter_driver.h, is shared with the unit tests that replay the corpus).
#include "rewriter_driver.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    fuzz::drive_rewriter(data, size);
    return 0;
}
