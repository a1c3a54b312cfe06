/*
 * A small CPU-bound program for tests/tools/jfr/check.sh: two threads spin in
 * methods with recognisable names (Busy.spinA on main, Busy.spinB on
 * "busy-b") for the given number of seconds, so a JFR recording of it has
 * execution samples whose stacks name them.
 */
public class Busy {
    static volatile long sink;

    static long spinA(long n) {
        long x = 1;
        for (long i = 0; i < n; i++) {
            x = x * 6364136223846793005L + i;
        }
        return x;
    }

    static long spinB(long n) {
        long x = 7;
        for (long i = 0; i < n; i++) {
            x ^= (x << 13) ^ (x >>> 7) ^ i;
        }
        return x;
    }

    public static void main(String[] args) throws InterruptedException {
        long seconds = args.length > 0 ? Long.parseLong(args[0]) : 6;
        long end = System.nanoTime() + seconds * 1_000_000_000L;
        Thread b = new Thread(() -> {
            while (System.nanoTime() < end) {
                sink += spinB(200_000);
            }
        }, "busy-b");
        b.start();
        while (System.nanoTime() < end) {
            sink += spinA(100_000);
        }
        b.join();
    }
}
