// A corpus read from a text file or a folder of text files (sorted by path, each file
// followed by a newline), tokenised as it streams: memory stays bounded whatever its size.

import Foundation

public struct TextCorpus: TokenStream {
    public let root: String
    public let files: [String]
    private let tokenizer: Tokenizer
    private var fileIndex = 0
    private var handle: FileHandle?
    private var fileOffset = 0
    private var pending: [Int32] = []
    private var pendingStart = 0
    private var carry = Data()
    private var linesBefore = 0  // newlines in the current file before the chunk being encoded

    public init(path: String, tokenizer: Tokenizer) throws {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw TextError.badFile(path: path, "no such corpus file or folder")
        }
        if isDir.boolValue {
            guard let walker = FileManager.default.enumerator(atPath: path) else {
                throw TextError.badFile(path: path, "cannot list the corpus folder")
            }
            var found: [String] = []
            for case let rel as String in walker {
                let full = (path as NSString).appendingPathComponent(rel)
                var sub: ObjCBool = false
                if FileManager.default.fileExists(atPath: full, isDirectory: &sub), !sub.boolValue,
                   !(rel as NSString).lastPathComponent.hasPrefix(".") {
                    found.append(full)
                }
            }
            files = found.sorted()
            guard !files.isEmpty else { throw TextError.badFile(path: path, "the corpus folder holds no files") }
        } else {
            files = [path]
        }
        root = path
        self.tokenizer = tokenizer
    }

    public var description: String { "text:\(root)" }

    public mutating func next(_ length: Int) throws -> [Int32]? {
        while pending.count - pendingStart < length {
            guard try refill() else { return nil }
        }
        let out = Array(pending[pendingStart..<(pendingStart + length)])
        pendingStart += length
        if pendingStart > 1 << 20 {
            pending.removeFirst(pendingStart)
            pendingStart = 0
        }
        return out
    }

    /// Reads up to 1 MiB more, cut after the last newline so that no character or word is split.
    private mutating func refill() throws -> Bool {
        while fileIndex < files.count {
            let path = files[fileIndex]
            if handle == nil {
                guard let h = FileHandle(forReadingAtPath: path) else {
                    throw TextError.badFile(path: path, "cannot read corpus file")
                }
                handle = h
                fileOffset = 0
                linesBefore = 0
            }
            let block = handle!.readData(ofLength: 1 << 20)
            var text = carry + block
            let chunkStart = fileOffset - carry.count
            if block.isEmpty {
                // End of file: flush the carry and a separating newline.
                try? handle?.close()
                handle = nil
                fileIndex += 1
                carry = Data()
                text.append(0x0A)
                try encode(text, file: path, offset: chunkStart)
                return true
            }
            fileOffset += block.count
            if let lastNewline = text.lastIndex(of: 0x0A) {
                carry = text.subdata(in: (lastNewline + 1)..<text.endIndex)
                text = text.subdata(in: text.startIndex..<(lastNewline + 1))
                try encode(text, file: path, offset: chunkStart)
                return true
            }
            carry = text  // a very long line: keep reading
        }
        return false
    }

    private mutating func encode(_ bytes: Data, file: String, offset: Int) throws {
        // No text file holds NUL; one that does is a binary file given as a corpus.
        if let nul = bytes.firstIndex(of: 0) {
            throw TextError.badFile(path: file, "holds a NUL byte at byte \(offset + nul - bytes.startIndex): a binary file, not text")
        }
        guard let text = String(data: bytes, encoding: .utf8) else {
            throw TextError.badFile(path: file, "not valid UTF-8 text near byte \(offset)")
        }
        do {
            pending += try tokenizer.encode(text)
        } catch let TextError.nonASCII(cp, index, line, column) {
            // Everything before the character is ASCII, so its character index is its byte offset.
            throw TextError.badFile(path: file,
                                    "non-ASCII character U+\(String(cp, radix: 16, uppercase: true)) at byte \(offset + index) "
                                            + "(line \(linesBefore + line), column \(column)); the character tokenizer takes ASCII only")
        } catch let TextError.badToken(message) {
            throw TextError.badFile(path: file, "\(message) (in the text starting at byte \(offset))")
        }
        linesBefore += bytes.reduce(0) { $0 + ($1 == 0x0A ? 1 : 0) }
    }
}
