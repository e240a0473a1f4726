// The keystore's error codes. They are Status codes (base/status.h) in the values base
// leaves to the layers above it; the numbers are stable, as they travel between nodes.
#pragma once

#include "base/status.h"

namespace quire {

inline constexpr Code kStaleKeystore{6};     // keystore older than the node's and a prefix of it
inline constexpr Code kKeystoreAhead{7};     // keystore newer than the node's: retry after more log
inline constexpr Code kKeystoreConflict{8};  // keystores that are not prefixes of each other

// Names the three codes for code_name and Status::to_string ("StaleKeystore", ...).
// Idempotent; whoever makes these statuses calls it first (the keystore, the engine).
void name_keystore_codes();

}  // namespace quire
