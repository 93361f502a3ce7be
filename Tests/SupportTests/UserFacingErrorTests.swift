// ParameterMessage: a library message names its parameters once; each caller spells them.

import Testing
import Support

@Suite("User-facing errors")
struct UserFacingErrorTests {
    struct Refusal: UserFacingError {
        let text: ParameterMessage
        var description: String { text.description }
        func message(naming name: (String) -> String) -> String { text.rendered(naming: name) }
    }

    struct Plain: UserFacingError {
        var description: String { "x.h5: no such file" }
    }

    @Test("parameters are named by the library's names unless the caller names them")
    func rendering() {
        let n = 300
        let error = Refusal(text: "\(parameter: "seq_len") \(n) must be at most 256; lower \(parameter: "seq_len")")
        #expect(error.description == "seq_len 300 must be at most 256; lower seq_len")
        let cli = error.message { "--" + $0.replacingOccurrences(of: "_", with: "-") }
        #expect(cli == "--seq-len 300 must be at most 256; lower --seq-len")
    }

    @Test("an error that names no parameter prints its description for every caller")
    func plain() {
        let error: any UserFacingError = Plain()
        #expect(error.message { "--" + $0 } == "x.h5: no such file")
        #expect(ParameterMessage("plain text").rendered { _ in "?" } == "plain text")
    }
}
