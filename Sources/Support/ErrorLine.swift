// Error messages quote names read from files (a config key, a tensor name, a format
// string), and a file may put a newline or a terminal escape in them. The CLI prints
// every error through `oneLine`, so its "one line on stderr" holds whatever the file says.

/// `message` with line breaks and other control characters written as escapes.
public func oneLine(_ message: String) -> String {
    var out = String.UnicodeScalarView()
    for s in message.unicodeScalars {
        switch s {
        case "\n": out.append(contentsOf: "\\n".unicodeScalars)
        case "\r": out.append(contentsOf: "\\r".unicodeScalars)
        case "\t": out.append(contentsOf: "\\t".unicodeScalars)
        case _ where s.value < 0x20 || (0x7f..<0xa0).contains(s.value) || s.value == 0x2028 || s.value == 0x2029:
            out.append(contentsOf: "\\u{\(String(s.value, radix: 16))}".unicodeScalars)
        default: out.append(s)
        }
    }
    return String(out)
}
