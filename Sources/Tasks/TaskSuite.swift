// Binary next-token tasks as minimal prompt pairs. Each pair is two prompts that differ
// only in the feature under test (documented per task in docs/tasks.md); each prompt has
// a target next token and an alternative, and the counterfactual's target is the
// presented prompt's alternative.

import Tensors
import Model
import Text
import Support

public struct TaskPrompt: Equatable, Sendable {
    public let tokens: [Int32]
    public let target: Int32
    public let alternative: Int32
    public init(tokens: [Int32], target: Int32, alternative: Int32) {
        self.tokens = tokens; self.target = target; self.alternative = alternative
    }
}

public struct PromptPair: Equatable, Sendable {
    public let presented: TaskPrompt
    public let counterfactual: TaskPrompt
    public init(presented: TaskPrompt, counterfactual: TaskPrompt) {
        self.presented = presented; self.counterfactual = counterfactual
    }
    public var prompts: [TaskPrompt] { [presented, counterfactual] }
}

public struct BinaryTask: Sendable {
    public let name: String
    public let summary: String
    /// What `length` means for this task.
    public let lengthMeaning: String
    let make: @Sendable (inout CodeGenerator, Int?) -> (String, Character, String, Character)

    /// One pair: `length` as the task defines it (nil: drawn like the training text).
    public func pair(_ g: inout CodeGenerator, length: Int? = nil) -> PromptPair {
        let (a, ta, b, tb) = make(&g, length)
        func tok(_ c: Character) -> Int32 { Int32(c.asciiValue!) }
        func enc(_ s: String) -> [Int32] { s.utf8.map { Int32($0) } }
        return PromptPair(presented: TaskPrompt(tokens: enc(a), target: tok(ta), alternative: tok(tb)),
                          counterfactual: TaskPrompt(tokens: enc(b), target: tok(tb), alternative: tok(ta)))
    }

    /// `count` pairs from a seed (the same seed gives the same pairs).
    public func pairs(count: Int, seed: UInt64, length: Int? = nil) -> [PromptPair] {
        var g = CodeGenerator(seed: seed ^ 0x7A5C_0000_0000_0000 ^ UInt64(truncatingIfNeeded: name.hashValueStable))
        return (0..<count).map { _ in pair(&g, length: length) }
    }
}

extension String {
    /// FNV-1a, stable across runs (Swift's hashValue is seeded per process).
    var hashValueStable: UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return h
    }
}

public enum TaskSuite {
    public static let all: [BinaryTask] = [singleDoubleQuote, bracketCounting, setOrString, dictOrList, parenCounting]

    public static func named(_ name: String) throws -> BinaryTask {
        guard let t = all.first(where: { $0.name == name }) else {
            throw TaskError.unknownTask(name, known: all.map(\.name))
        }
        return t
    }

    /// A few statements of ordinary code that do not mention `avoid`, ending in a newline.
    static func context(_ g: inout CodeGenerator, avoiding avoid: String? = nil, count: Int? = nil) -> String {
        var lines: [String] = []
        let n = count ?? g.int(0...3)
        while lines.count < n {
            let s = g.statement()
            if let avoid, mentions(avoid, in: s) { continue }
            lines.append(s)
        }
        return lines.map { $0 + "\n" }.joined()
    }

    /// True when `name` occurs in `text` as a whole identifier.
    static func mentions(_ name: String, in text: String) -> Bool {
        let chars = Array(text.utf8), n = Array(name.utf8)
        func ident(_ c: UInt8) -> Bool { (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c == 95 }
        guard chars.count >= n.count else { return false }
        for i in 0...(chars.count - n.count) where Array(chars[i..<(i + n.count)]) == n {
            if (i == 0 || !ident(chars[i - 1])) && (i + n.count == chars.count || !ident(chars[i + n.count])) { return true }
        }
        return false
    }

    /// Close a string with the quote that opened it. Pair: the opening quote, `"` vs `'`.
    /// length = characters inside the string.
    public static let singleDoubleQuote = BinaryTask(
        name: "single_double_quote", summary: "close a string with the quote that opened it",
        lengthMeaning: "characters inside the string") { g, length in
        let ctx = context(&g), v = g.name(), body = g.stringBody(length: length ?? g.int(1...12))
        return ("\(ctx)\(v) = \"\(body)", "\"", "\(ctx)\(v) = '\(body)", "'")
    }

    /// After the inner list of `[[…]` closes, `]` (depth 2) vs newline (depth 1).
    /// Pair: `x = [[1, 2]` vs `x = [1, 2]` (one `[` fewer). length = numbers in the list.
    public static let bracketCounting = BinaryTask(
        name: "bracket_counting", summary: "after a list closes, close the outer list (depth 2) or end the line (depth 1)",
        lengthMeaning: "numbers in the (inner) list (default 1 to 20)") { g, length in
        let ctx = context(&g), v = g.name()
        let numbers = (0..<(length ?? g.int(1...20))).map { _ in g.number() }.joined(separator: ", ")
        return ("\(ctx)\(v) = [[\(numbers)]", "]", "\(ctx)\(v) = [\(numbers)]", "\n")
    }

    /// A variable made a set is used with `.add`, one made a string with `+=`: after its name,
    /// `.` vs space. Pair: `= set()` vs `= ""`. length = statements between definition and use.
    public static let setOrString = BinaryTask(
        name: "set_or_string", summary: "after a variable's name, `.` if it holds a set (`.add`), space if a string (`+=`)",
        lengthMeaning: "statements between the definition and the use") { g, length in
        let v = g.name()
        let ctx = context(&g, avoiding: v), filler = context(&g, avoiding: v, count: length ?? g.int(1...4))
        return ("\(ctx)\(v) = set()\n\(filler)\(v)", ".", "\(ctx)\(v) = \"\"\n\(filler)\(v)", " ")
    }

    /// A dict is used with `[key] =`, a list with `.append`: after the name, `[` vs `.`.
    /// Pair: `= {}` vs `= []`. length = statements between definition and use.
    public static let dictOrList = BinaryTask(
        name: "dict_or_list", summary: "after a variable's name, `[` if it holds a dict, `.` if a list (`.append`)",
        lengthMeaning: "statements between the definition and the use") { g, length in
        let v = g.name()
        let ctx = context(&g, avoiding: v), filler = context(&g, avoiding: v, count: length ?? g.int(1...4))
        return ("\(ctx)\(v) = {}\n\(filler)\(v)", "[", "\(ctx)\(v) = []\n\(filler)\(v)", ".")
    }

    /// After an inner call closes, `)` (depth 2) vs newline (depth 1).
    /// Pair: `f(g(x, 1)` vs `g(x, 1)`. length = arguments of the inner call.
    public static let parenCounting = BinaryTask(
        name: "paren_counting", summary: "after a call closes, close the outer call (depth 2) or end the line (depth 1)",
        lengthMeaning: "arguments of the (inner) call") { g, length in
        let ctx = context(&g)
        let outer = g.pick(["print", "len", "sum", "max"] + CodeGenerator.functions), inner = g.pick(CodeGenerator.functions)
        let args = (0..<(length ?? g.int(1...3))).map { _ in g.chance(0.5) ? g.name() : g.number() }.joined(separator: ", ")
        return ("\(ctx)\(outer)(\(inner)(\(args))", ")", "\(ctx)\(inner)(\(args))", "\n")
    }
}

public enum TaskError: UserFacingError {
    case unknownTask(String, known: [String])
    public var description: String {
        switch self {
        case .unknownTask(let n, let known): return "unknown task \"\(n)\"; tasks: \(known.joined(separator: ", "))"
        }
    }
}
