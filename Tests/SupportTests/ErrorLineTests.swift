// oneLine: what the CLI prints for an error stays one line whatever a file put in it.

import Testing
import Support

@Suite("Error lines")
struct ErrorLineTests {
    @Test("line breaks and control characters are escaped; other text is kept")
    func escapes() {
        // The fuzzer's first finding: a config key holding a newline made a two-line error.
        #expect(oneLine("unknown config field \"a\nb\"") == "unknown config field \"a\\nb\"")
        #expect(oneLine("x\r\ty\u{1b}[31m\u{7f}\u{85}\u{2028}z") == "x\\r\\ty\\u{1b}[31m\\u{7f}\\u{85}\\u{2028}z")
        let plain = "model.h5: dataset blocks/0/attn/W_Q has shape [8, 8], the config needs [8, 16] — café ∑"
        #expect(oneLine(plain) == plain)
        for c in (0..<0x20).map({ Character(Unicode.Scalar($0)!) }) {
            #expect(!oneLine("a\(c)b").unicodeScalars.contains { $0.value < 0x20 })
        }
    }
}
