// A seeded generator of small Python-like programs, character by character: string
// assignments with both quote types, nested lists of numbers (depth 1–3, lengths from
// one to a hundred elements), sets and strings that are used later with `.add` / `+=`,
// dicts and lists used later with `[key] =` / `.append`, function definitions and calls,
// loops, conditionals and comments. The tasks (TaskSuite.swift) build their prompts from
// the same pieces, so a prompt looks like the text the models were trained on.

import Tensors

public struct CodeGenerator {
    public var rng: SeededRandom
    /// Variables defined earlier in the current file whose use is still to come.
    private var pending: [(name: String, kind: ContainerKind, due: Int)] = []
    private var statementIndex = 0

    public init(seed: UInt64) { rng = SeededRandom(seed: seed) }

    public enum ContainerKind { case set, string, dict, list }

    public static let names = ["x", "y", "z", "a", "b", "n", "s", "t", "items", "names", "data", "values", "result",
                        "seen", "text", "buf", "out", "acc", "keys", "vals", "line", "word", "parts", "total",
                        "count", "tmp", "row", "col", "node", "path"]
    public static let words = ["alpha", "beta", "gamma", "hello", "world", "foo", "bar", "baz", "spam", "eggs", "red",
                        "green", "blue", "one", "two", "key", "value", "left", "right", "up", "down", "ok", "done"]
    public static let functions = ["f", "g", "h", "run", "step", "load", "save", "parse", "check", "update", "merge", "walk"]

    // MARK: pieces

    public mutating func pick<T>(_ xs: [T]) -> T { xs[rng.nextInt(xs.count)] }
    public mutating func chance(_ p: Double) -> Bool { Double(rng.nextUniform()) < p }
    public mutating func int(_ range: ClosedRange<Int>) -> Int { range.lowerBound + rng.nextInt(range.count) }

    public mutating func name() -> String { pick(Self.names) }

    /// A name to assign to: never one whose typed use is still pending, so that a set stays a
    /// set until it is used as one.
    mutating func target() -> String {
        while true {
            let n = name()
            if !pending.contains(where: { $0.name == n }) { return n }
        }
    }

    /// A number as it appears in a list: mostly one or two digits.
    public mutating func number() -> String { chance(0.7) ? String(int(0...99)) : String(int(100...999)) }

    /// String contents without quotes or backslashes (letters, digits, spaces, punctuation).
    public mutating func stringBody(length: Int? = nil) -> String {
        let n = length ?? int(1...12)
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz abcdefghijklmnopqrstuvwxyz ABCDEFG0123456789.,:;!?-_+*/=()")
        var s = ""
        if chance(0.4) && length == nil { return pick(Self.words) + (chance(0.3) ? " " + pick(Self.words) : "") }
        for _ in 0..<n { s.append(pick(alphabet)) }
        return s
    }

    /// A string literal; sometimes (10%) it holds the other quote character, so that the
    /// closing quote depends on the opening one, not on the last quote seen.
    public mutating func stringLiteral(quote: Character? = nil) -> String {
        let q = quote ?? (chance(0.5) ? "\"" : "'")
        var body = stringBody()
        if chance(0.1) {
            let other: Character = q == "\"" ? "'" : "\""
            let i = body.index(body.startIndex, offsetBy: rng.nextInt(body.count + 1))
            body.insert(other, at: i)
        }
        return "\(q)\(body)\(q)"
    }

    /// A list length: mostly short, sometimes long (the context-dilution study needs long lists in training).
    public mutating func listLength() -> Int {
        let u = rng.nextUniform()
        if u < 0.6 { return int(1...6) }
        if u < 0.9 { return int(7...20) }
        return int(21...100)
    }

    /// A list of numbers; `depth` 1–3. Depth 2 and 3 mix forms: one inner list, several, or
    /// inner lists among numbers.
    public mutating func listLiteral(depth: Int, length: Int? = nil) -> String {
        let n = length ?? listLength()
        if depth <= 1 { return "[" + (0..<n).map { _ in number() }.joined(separator: ", ") + "]" }
        switch rng.nextInt(3) {
        case 0:  // [[…]]
            return "[" + listLiteral(depth: depth - 1, length: n) + "]"
        case 1:  // [[…], […]]
            let parts = int(2...4)
            return "[" + (0..<parts).map { _ in listLiteral(depth: depth - 1, length: max(1, n / parts)) }.joined(separator: ", ") + "]"
        default: // [1, […], 2]
            let inner = listLiteral(depth: depth - 1, length: max(1, n / 2))
            let before = (0..<int(0...2)).map { _ in number() }, after = (0..<int(0...2)).map { _ in number() }
            return "[" + (before + [inner] + after).joined(separator: ", ") + "]"
        }
    }

    public mutating func comment() -> String {
        var words = (0..<int(1...6)).map { _ in pick(Self.words) }
        // Some comments hold brackets or quotes: distractors for the bracket and quote tasks.
        if chance(0.15) { words.insert(pick(["[", "[[", "]", "(", "'", "\"", "[x]"]), at: rng.nextInt(words.count + 1)) }
        return "# " + words.joined(separator: " ")
    }

    public mutating func expression() -> String {
        switch rng.nextInt(6) {
        case 0: return name()
        case 1: return number()
        case 2: return "\(name()) + \(number())"
        case 3: return "len(\(name()))"
        case 4: return "\(pick(Self.functions))(\(name()))"
        default: return "\(name()) * \(number())"
        }
    }

    /// A call with nested parentheses: `f(g(x), 1)`; `depth` levels of calls.
    public mutating func call(depth: Int, arguments: Int? = nil) -> String {
        let n = arguments ?? int(1...3)
        var args = (0..<n).map { _ in chance(0.5) ? name() : number() }
        if depth > 1 { args[rng.nextInt(args.count)] = call(depth: depth - 1) }
        return pick(Self.functions + ["print", "len", "sum", "max"]) + "(" + args.joined(separator: ", ") + ")"
    }

    // MARK: statements

    /// One statement (possibly several lines) at `indent` levels of four spaces.
    public mutating func statement(indent: Int = 0) -> String {
        statementIndex += 1
        let pad = String(repeating: "    ", count: indent)
        // A variable defined earlier and due now gets used in its type's way.
        if let i = pending.firstIndex(where: { $0.due <= statementIndex }) {
            let v = pending.remove(at: i)
            return pad + use(v.name, v.kind)
        }
        let u = rng.nextUniform()
        switch u {
        case ..<0.18:
            return pad + "\(target()) = \(stringLiteral())"
        case ..<0.36:
            let depth = chance(0.45) ? 1 : (chance(0.7) ? 2 : 3)
            return pad + "\(target()) = \(listLiteral(depth: depth))"
        case ..<0.50:
            let kind = pick([ContainerKind.set, .string, .dict, .list])
            let v = target()
            pending.append((v, kind, statementIndex + int(1...6)))
            return pad + "\(v) = " + initializer(kind)
        case ..<0.58:
            let pairs = (0..<int(1...4)).map { _ in "\(stringLiteral()): "
                    + "\(chance(0.7) ? number() : listLiteral(depth: 1, length: int(1...4)))" }
            return pad + "\(target()) = {" + pairs.joined(separator: ", ") + "}"
        case ..<0.66:
            return pad + call(depth: int(1...3))
        case ..<0.72:
            return pad + comment()
        case ..<0.80 where indent < 2:
            let header = chance(0.6) ? "for \(target()) in \(chance(0.5) ? "range(\(number()))" : name()):"
                                     : "while \(name()) < \(number()):"
            return pad + header + "\n" + block(indent: indent + 1)
        case ..<0.87 where indent < 2:
            return pad + "if \(name()) \(pick(["==", "<", ">", "!="])) \(expression()):\n" + block(indent: indent + 1)
        case ..<0.93 where indent == 0:
            let params = (0..<int(0...3)).map { _ in target() }
            return "def \(pick(Self.functions))(\(params.joined(separator: ", "))):\n" + block(indent: 1)
                + "\n    return \(expression())"
        default:
            return pad + "\(target()) \(pick(["=", "+=", "-="])) \(expression())"
        }
    }

    mutating func block(indent: Int) -> String {
        (0..<int(1...3)).map { _ in statement(indent: indent) }.joined(separator: "\n")
    }

    public mutating func initializer(_ kind: ContainerKind) -> String {
        switch kind {
        case .set: return "set()"
        case .string: return chance(0.5) ? "\"\"" : "''"
        case .dict: return "{}"
        case .list: return "[]"
        }
    }

    /// How each container type is used later: the tasks ask for the character after the name.
    public mutating func use(_ name: String, _ kind: ContainerKind) -> String {
        switch kind {
        case .set: return "\(name).add(\(chance(0.5) ? number() : stringLiteral()))"
        case .string: return "\(name) += \(stringLiteral())"
        case .dict: return "\(name)[\(stringLiteral())] = \(number())"
        case .list: return "\(name).append(\(number()))"
        }
    }

    /// A file: statements separated by newlines, ending with a blank line.
    public mutating func file() -> String {
        pending.removeAll()
        statementIndex = 0
        var lines = (0..<int(8...30)).map { _ in statement() }
        for v in pending { lines.append(use(v.name, v.kind)) }
        pending.removeAll()
        return lines.joined(separator: "\n") + "\n\n"
    }
}
