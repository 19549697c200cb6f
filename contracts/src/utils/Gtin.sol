// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// @dev GS1 GTIN checks. A GTIN-8/12/13 is a GTIN-14 with leading zeros, so every GTIN is held
/// as one 14-digit number.
library Gtin {
    /// @dev True when `gtin` has at most 14 digits, is not zero and its last digit is the GS1
    /// mod-10 check digit (weights 3,1,3,... from the digit left of the check digit).
    function isValid(uint64 gtin) internal pure returns (bool) {
        if (gtin == 0 || gtin > 99_999_999_999_999) return false;
        uint256 rest = gtin / 10;
        uint256 sum;
        for (uint256 i = 0; i < 13; ++i) {
            sum += (rest % 10) * (i % 2 == 0 ? 3 : 1);
            rest /= 10;
        }
        return (10 - (sum % 10)) % 10 == gtin % 10;
    }
}
