"""OpenADR 2.0b: a VEN (openleadr) whose answers come from the optimizer."""

import warnings

from cryptography.utils import CryptographyDeprecationWarning

# openleadr signs with signxml 4, whose signatures name DSA key types at import; cryptography
# 51 deprecates DSA. The VEN never uses DSA: keep the warning from every command's stderr.
warnings.filterwarnings(
    "ignore", message="DSA is deprecated", category=CryptographyDeprecationWarning
)
