// PyTorch checkpoints: the zip reader (central directory, zip64, CRC), the restricted
// unpickler and the strided tensor reads, through TorchCheckpoint as `convert` uses it.

import Foundation
import FuzzSupport
import Checkpoints
import Model

func fuzz(_ input: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data = input else { return 0 }
    let path = FuzzInput.file(data, size, name: "input.pt")
    do {
        let checkpoint = try TorchCheckpoint(path: path)
        for name in checkpoint.tensorNames {
            do { _ = try checkpoint.tensor(name) } catch { requireCleanError(error, naming: path) }
        }
    } catch {
        requireCleanError(error, naming: path)
    }
    return 0
}

runFuzzer(fuzz)
