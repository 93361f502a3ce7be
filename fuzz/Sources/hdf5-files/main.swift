// The HDF5 file validators: a model file (ModelFile.load), an activation file
// (ActivationFile and its site and token reads) and a bridge file (Bridge.load). Each
// input is tried as all three; each reader checks the `format` attribute first, so the
// seeds of one kind mostly exercise that kind's checks.

import Bridges
import Foundation
import FuzzSupport
import Model

func fuzz(_ input: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data = input else { return 0 }
    let path = FuzzInput.file(data, size, name: "input.h5")
    do { _ = try ModelFile.load(path) } catch { requireCleanError(error, naming: path) }
    do {
        let file = try ActivationFile(path: path)
        for name in file.sites {
            do { _ = try file.site(name) } catch { requireCleanError(error, naming: path) }
        }
        if file.rowsComplete >= file.seqLen {
            do { _ = try file.tokens(sequences: 0..<1) } catch { requireCleanError(error, naming: path) }
        }
    } catch {
        requireCleanError(error, naming: path)
    }
    do { _ = try Bridge.load(path) } catch { requireCleanError(error, naming: path) }
    return 0
}

runFuzzer(fuzz)
