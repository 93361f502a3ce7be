// The safetensors reader: header length, JSON header, offsets, dtypes, overlaps; then
// every tensor the header lists is converted, which reads exactly the bytes it claims.

import Foundation
import FuzzSupport
import Checkpoints
import Model

func fuzz(_ input: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data = input else { return 0 }
    let source = "input.safetensors"
    do {
        let file = try SafetensorsFile(data: Data(bytes: data, count: size), path: source)
        for e in file.entries {
            do { _ = try file.tensor(e.name) } catch { requireCleanError(error, naming: source) }
        }
    } catch {
        requireCleanError(error, naming: source)
    }
    return 0
}

runFuzzer(fuzz)
