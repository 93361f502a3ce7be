// Progress for long work: one self-overwriting line on stderr (rate and ETA), shown only
// when stderr is a terminal so that logs and pipes stay clean.

import Foundation

public final class ProgressLine {
    private let label: String
    private let total: Int
    private let unit: String
    private let start = Date()
    private var lastDraw = Date.distantPast
    private let enabled: Bool

    public init(_ label: String, total: Int, unit: String = "tokens", enabled: Bool = isatty(2) != 0) {
        self.label = label
        self.total = total
        self.unit = unit
        self.enabled = enabled
    }

    /// Redraws at most a few times a second; `extra` is appended (e.g. "loss 1.23").
    public func update(_ done: Int, extra: String = "") {
        guard enabled else { return }
        let now = Date()
        guard now.timeIntervalSince(lastDraw) > 0.25 || done >= total else { return }
        lastDraw = now
        let elapsed = now.timeIntervalSince(start)
        let rate = elapsed > 0 ? Double(done) / elapsed : 0
        let eta = rate > 0 ? Double(total - done) / rate : 0
        let line = "\r\(label): \(done)/\(total) \(unit)  \(Int(rate)) \(unit)/s  ETA "
                + "\(ProgressLine.clock(eta))\(extra.isEmpty ? "" : "  " + extra)"
        FileHandle.standardError.write(Data((line + "\u{1B}[K").utf8))
    }

    public func finish() {
        guard enabled else { return }
        FileHandle.standardError.write(Data("\n".utf8))
    }

    public static func clock(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }
}
