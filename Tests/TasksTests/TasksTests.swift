import Testing
import Tasks
import Tensors
import Model
import Text

@Suite("Synthetic corpus and tasks")
struct TasksTests {
    @Test("the corpus is ASCII and deterministic per seed")
    func corpusDeterministic() throws {
        var a = SyntheticCorpus(seed: 4), b = SyntheticCorpus(seed: 4), c = SyntheticCorpus(seed: 5)
        let x = try a.next(5000)!, y = try b.next(5000)!, z = try c.next(5000)!
        #expect(x == y)
        #expect(x != z)
        #expect(x.allSatisfy { $0 >= 0 && $0 < 128 })
        let text = String(decoding: x.map { UInt8($0) }, as: UTF8.self)
        for needle in ["set()", ".add(", "+= ", ".append(", "def ", "for ", "# ", "[[", "\"", "'"] {
            #expect(text.contains(needle), "corpus lacks \(needle)")
        }
    }

    /// The parts where the two prompts of a pair differ, after their common prefix and suffix.
    func difference(_ a: [Int32], _ b: [Int32]) -> (String, String) {
        var p = 0
        while p < min(a.count, b.count) && a[p] == b[p] { p += 1 }
        var s = 0
        while s < min(a.count, b.count) - p && a[a.count - 1 - s] == b[b.count - 1 - s] { s += 1 }
        let str = { (x: ArraySlice<Int32>) in String(decoding: x.map { UInt8($0) }, as: UTF8.self) }
        return (str(a[p..<(a.count - s)]), str(b[p..<(b.count - s)]))
    }

    @Test("pairs are deterministic and differ only where documented", arguments: TaskSuite.all.map(\.name))
    func pairsDifferOnlyWhereDocumented(name: String) throws {
        let task = try TaskSuite.named(name)
        let pairs = task.pairs(count: 50, seed: 3)
        #expect(pairs == task.pairs(count: 50, seed: 3))
        #expect(pairs != task.pairs(count: 50, seed: 4))
        for pair in pairs {
            #expect(pair.presented.target == pair.counterfactual.alternative)
            #expect(pair.presented.alternative == pair.counterfactual.target)
            #expect(pair.presented.target != pair.presented.alternative)
            let (a, b) = difference(pair.presented.tokens, pair.counterfactual.tokens)
            switch name {
            case "single_double_quote": #expect(a == "\"" && b == "'")
            case "bracket_counting": #expect((a, b) == ("[", ""))
            case "set_or_string": #expect(a.hasPrefix("set()") || a == "set()"); #expect(b == "\"\"" || b.hasPrefix("\"\""))
            case "dict_or_list": #expect((a, b) == ("{}", "[]") || (a, b) == ("{", "["))
            case "paren_counting":
                // `outer(` inserted (the diff may come out rotated when names share letters).
                #expect(b.isEmpty)
                #expect(a.filter { $0 == "(" }.count == 1 && a.allSatisfy { $0.isLetter || $0 == "(" })
            default: Issue.record("no rule for \(name)")
            }
        }
    }

    @Test("the length parameter sets the list length")
    func lengthParameter() throws {
        for n in [1, 7, 40] {
            let pair = TaskSuite.bracketCounting.pairs(count: 1, seed: 1, length: n)[0]
            let text = String(decoding: pair.counterfactual.tokens.map { UInt8($0) }, as: UTF8.self)
            let list = text.split(separator: "\n").last!.split(separator: "[").last!
            #expect(list.split(separator: ",").count == n)
            #expect(text.hasSuffix("]"))
        }
    }

    @Test("evaluation metrics follow from the last-position logits")
    func evaluationMetrics() throws {
        let model = try Transformer(config: ModelConfig(nLayer: 1, dModel: 16, nHead: 2, dMLP: 32, nCtx: 256), seed: 1)
        let task = TaskSuite.singleDoubleQuote
        let pairs = task.pairs(count: 6, seed: 2)
        let result = try TaskEvaluation.evaluate(model: model, task: task, pairs: pairs)
        let prompts = pairs.flatMap(\.prompts)
        var correct = 0, loss = 0.0, p = 0.0
        for prompt in prompts {
            let tokens = Array(prompt.tokens.suffix(256))  // the evaluation keeps the last n_ctx tokens
            let logits = try model.logits(tokens: tokens)
            let v = 128, last = tokens.count - 1
            let row = (0..<v).map { Double(logits.data[last * v + $0]) }
            let lt = row[Int(prompt.target)], la = row[Int(prompt.alternative)]
            if lt > la { correct += 1 }
            loss += log(1 + exp(la - lt))
            let m = row.max()!
            p += exp(lt - m) / row.map { exp($0 - m) }.reduce(0, +)
        }
        #expect(result.prompts == 12)
        #expect(abs(result.accuracy - Double(correct) / 12) < 1e-12)
        #expect(abs(result.contrastLoss - loss / 12) < 1e-5)
        #expect(abs(result.meanProbability - p / 12) < 1e-5)
    }

    @Test("an unknown task name lists the tasks")
    func unknownTask() {
        #expect(throws: TaskError.self) { _ = try TaskSuite.named("quotes") }
        do { _ = try TaskSuite.named("quotes") } catch { #expect("\(error)".contains("single_double_quote")) }
    }
}

import Foundation
