import ArgumentParser
import Foundation
import Checkpoints
import Model
import Support
import Text

struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize", abstract: "Token ids of a text under a model's tokenizer, and the text decoded back.")

    @Option(help: "Model file (.h5), or a checkpoint folder / .pt.")
    var model: String
    @Option(help: "The text.")
    var text: String?
    @Option(help: "A UTF-8 text file (instead of --text).")
    var file: String?
    @Flag(help: "Tokenize each line of --file on its own (split at \\n, which is not part of the line): one JSON object per line.")
    var lines = false
    @Flag(help: "Print JSON.")
    var json = false

    func run() throws {
        guard (text == nil) != (file == nil) else { throw ValidationError("give exactly one of --text and --file") }
        guard !lines || file != nil else { throw ValidationError("--lines needs --file") }
        let tokenizer = try ModelLoader.load(model).tokenizer
        var input = text ?? ""
        if let file {
            guard let data = FileManager.default.contents(atPath: file) else { throw CommandError(file: file, "cannot read file") }
            guard let decoded = String(data: data, encoding: .utf8) else { throw CommandError(file: file, "is not UTF-8 text") }
            input = decoded
        }
        if lines {
            // One compact JSON object per line, so thousands of lines cost one model load.
            // Split on the scalar: as a Character, "\r\n" is one grapheme and would not match "\n".
            for line in input.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false) {
                printJSON(try record(String(line), tokenizer))
            }
            return
        }
        let result = try record(input, tokenizer)
        if json { printJSON(result); return }
        let tokens = try tokenizer.encode(input)
        print("\(tokens.count) tokens: " + tokens.map(String.init).joined(separator: " "))
        print(tokens.map { String(reflecting: tokenizer.decode([$0])) }.joined(separator: " "))
    }

    func record(_ text: String, _ tokenizer: Tokenizer) throws -> JSONValue {
        let tokens = try tokenizer.encode(text)
        return .object(["tokens": .array(tokens.map { .number(Double($0)) }), "decoded": .string(tokenizer.decode(tokens))])
    }
}
