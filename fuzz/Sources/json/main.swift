// The config and recipe JSON decoders (`init --config`, `train --recipe`, and the config
// attributes of every HDF5 file). What decodes must also survive the way back: encoding
// it and decoding again gives the same value (model files store the encoded config).

import Foundation
import FuzzSupport
import Training
import Model

func fuzz(_ input: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data = input else { return 0 }
    let bytes = Data(bytes: data, count: size)
    do {
        let config = try ModelConfig.decode(json: String(decoding: bytes, as: UTF8.self), source: "config.json")
        let again = try ModelConfig.decode(json: config.jsonString(), source: "config.json (re-encoded)")
        guard again == config else { fatalError("config changes on re-encoding: \(config) → \(again)") }
    } catch {
        requireCleanError(error, naming: "config.json")
    }
    do {
        let recipe = try Recipe.decode(bytes, source: "recipe.json")
        let again = try Recipe.decode(Data(recipe.jsonString.utf8), source: "recipe.json (re-encoded)")
        guard again == recipe else { fatalError("recipe changes on re-encoding: \(recipe.jsonString) → \(again.jsonString)") }
    } catch {
        requireCleanError(error, naming: "recipe.json")
    }
    return 0
}

runFuzzer(fuzz)
