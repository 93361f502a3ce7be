// OpenBLAS set-up: kernel choice and thread count.
//
// OpenBLAS 0.3.21 does not recognise this machine's CPU and silently falls back to a slow
// SSE3 kernel unless OPENBLAS_CORETYPE names one. It reads the variable once, when the
// library loads, which happens before any Swift code runs. So the CLI re-executes itself
// once with the variable set (see `ensureCoreType`); tests and benchmarks get it from the
// Makefile. The choice comes from the CPU's own flags: a kernel the CPU cannot run dies
// with an illegal instruction, so when in doubt we leave the choice to OpenBLAS.

import CLinAlg
import Foundation

public enum BLASRuntime {
    public static let coreTypeVariable = "OPENBLAS_CORETYPE"
    private static let reexecMarker = "SPARSEBRIDGE_BLAS_REEXEC"

    /// The OpenBLAS kernel this CPU can run fastest, from /proc/cpuinfo flags; nil to let OpenBLAS decide.
    public static func recommendedCoreType(cpuFlags: Set<String>? = nil) -> String? {
        let flags = cpuFlags ?? readCPUFlags()
        if ["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"].allSatisfy(flags.contains) {
            return "SkylakeX"
        }
        if ["avx2", "fma"].allSatisfy(flags.contains) { return "Haswell" }
        return nil
    }

    static func readCPUFlags() -> Set<String> {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return [] }
        for line in text.split(separator: "\n") where line.hasPrefix("flags") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            return Set(line[line.index(after: colon)...].split(separator: " ").map(String.init))
        }
        return []
    }

    /// Makes sure OpenBLAS was loaded with a fitting kernel: when OPENBLAS_CORETYPE is unset and
    /// this CPU has a better kernel than OpenBLAS's own guess, sets it and re-executes the
    /// program (once). A value the user set is always honoured. Call first thing in `main`.
    public static func ensureCoreType() {
        let env = ProcessInfo.processInfo.environment
        guard env[coreTypeVariable] == nil, env[reexecMarker] == nil,
              let core = recommendedCoreType() else { return }
        setenv(coreTypeVariable, core, 1)
        setenv(reexecMarker, "1", 1)
        let args = CommandLine.unsafeArgv
        execv("/proc/self/exe", args)
        // execv returns only on failure; carry on with the kernel we have.
    }

    private typealias CoreNameFunction = @convention(c) () -> UnsafeMutablePointer<CChar>?
    private typealias SetThreadsFunction = @convention(c) (Int32) -> Void

    private static func symbol<T>(_ name: String, as type: T.Type) -> T? {
        guard let handle = dlopen(nil, RTLD_NOW), let sym = dlsym(handle, name) else { return nil }
        return unsafeBitCast(sym, to: type)
    }

    /// The kernel OpenBLAS is using ("SkylakeX", "Haswell", "Prescott" …), or "unknown (not OpenBLAS)".
    public static var coreName: String {
        guard let f = symbol("openblas_get_corename", as: CoreNameFunction.self), let s = f() else {
            return "unknown (not OpenBLAS)"
        }
        return String(cString: s)
    }

    /// How the kernel was chosen, for --version and benchmark headers.
    public static var summary: String {
        let env = ProcessInfo.processInfo.environment[coreTypeVariable]
        let chosenHere = ProcessInfo.processInfo.environment[reexecMarker] != nil
        let how = env.map { "OPENBLAS_CORETYPE=\($0)" + (chosenHere ? " chosen from the CPU flags" : " as set") }
            ?? "OpenBLAS's own detection"
        return "BLAS kernel \(coreName) (\(how)), \(threads) thread(s)"
    }

    /// Threads used by SparseBridge's parallel loops, which also split large matrix products.
    public static var threads: Int {
        get { Parallel.threads }
        set { Parallel.threads = max(1, newValue) }
    }

    /// OpenBLAS itself stays on one thread (see MatMul.swift); touched before every BLAS call.
    static let singleThreadedBLAS: Bool = {
        if let f = symbol("openblas_set_num_threads", as: SetThreadsFunction.self) { f(1) }
        return true
    }()
}
