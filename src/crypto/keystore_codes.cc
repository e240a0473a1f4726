#include "crypto/keystore_codes.h"

namespace quire {

void name_keystore_codes() {
  name_layer_code(kStaleKeystore, "StaleKeystore");
  name_layer_code(kKeystoreAhead, "KeystoreAhead");
  name_layer_code(kKeystoreConflict, "KeystoreConflict");
}

}  // namespace quire
