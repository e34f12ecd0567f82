%% krill_bench: the krill benchmark suite written idiomatically in Erlang/OTP,
%% as a peer to compare krill against.
%%
%% One Erlang process stands for one krill process; messages are plain Erlang
%% messages (no ETS, no NIFs, no tricks). Same benchmarks, same options and the
%% same JSON lines as perf/bench/krill-bench, with "impl":"erlang".
%%
%% Usage (normally through ./run, which picks +S and +P):
%%   erl -noshell +S N:N +P PROCS -pa DIR -run krill_bench main -extra BENCH [opts]
%% (-extra, because erl itself would take "--procs" for one of its own flags.)
%%
%%   spawn    --procs N                 (default 1000000)
%%   ring     --procs N --laps M        (default 10000 x 1000)
%%   skynet   --leaves N --fanout F     (default 1000000, 10)
%%   pingpong --pairs P --rounds K      (default 1000 x 10000)
%%   fanin    --producers P --messages K (default 2 x 5000000)
%%   common:  --schedulers N  (schedulers online; ./run also passes +S N:N)
%%   and the Savina set, sv-pingpong ... sv-bank (krill_savina.erl), with the
%%   options of perf/bench/savina.
%%
%% Every benchmark prints one JSON object on one line with at least
%% impl, bench, schedulers, seconds, rate, then its parameters and extras.
-module(krill_bench).
-export([main/0, main/1]).

-define(USAGE,
"usage: krill_bench BENCH [--schedulers N] [options]\n"
"  spawn    --procs N\n"
"  ring     --procs N --laps M\n"
"  skynet   --leaves N --fanout F\n"
"  pingpong --pairs P --rounds K\n"
"  fanin    --producers P --messages K\n"
"  sv-pingpong, sv-count, sv-fjcreate, sv-fjthroughput, sv-threadring,\n"
"  sv-chameneos, sv-big, sv-concdict, sv-fib, sv-bank: see krill_savina.erl\n").

%% ---------------------------------------------------------------- entry ---

main() -> main(init:get_plain_arguments()).

main(Args) ->
    Code = try run(Args)
           catch
               throw:{usage, Msg} ->
                   io:format(standard_error, "krill_bench: ~s~n~s", [Msg, ?USAGE]),
                   2
           end,
    halt(Code).

run([]) -> throw({usage, "missing BENCH"});
run(["--help" | _]) -> io:format("~s", [?USAGE]), 0;
run(["-h" | _]) -> io:format("~s", [?USAGE]), 0;
run([BenchStr | OptArgs]) ->
    Bench = case BenchStr of
                "spawn" -> spawn;
                "ring" -> ring;
                "skynet" -> skynet;
                "pingpong" -> pingpong;
                "fanin" -> fanin;
                "sv-" ++ _ -> savina_bench(BenchStr);
                _ -> throw({usage, "unknown benchmark: " ++ BenchStr})
            end,
    Defaults = defaults(Bench),
    Opts = parse_opts(OptArgs, Defaults#{schedulers => undefined}),
    set_schedulers(maps:get(schedulers, Opts)),
    Params = [{K, maps:get(K, Opts)} || {K, _} <- param_order(Bench)],
    lists:foreach(fun({writes, V}) when is_integer(V), V >= 0 -> ok;
                     ({_, V}) when is_integer(V), V >= 1 -> ok;
                     ({K, _}) -> throw({usage, "--" ++ atom_to_list(K) ++ " must be >= 1"})
                  end, Params),
    {Seconds, Rate, Extras, Ok} = bench(Bench, maps:from_list(Params)),
    Line = [{impl, "erlang"},
            {bench, atom_to_list(Bench)},
            {schedulers, erlang:system_info(schedulers_online)},
            {seconds, Seconds},
            {rate, Rate}]
        ++ Params ++ Extras,
    io:put_chars([json(Line), $\n]),
    case Ok of true -> 0; false -> 1 end.

defaults(Bench) -> maps:from_list(param_order(Bench)).

%% Parameters in the order they appear in the JSON line, with defaults.
param_order(spawn) -> [{procs, 1000000}];
param_order(ring) -> [{procs, 10000}, {laps, 1000}];
param_order(skynet) -> [{leaves, 1000000}, {fanout, 10}];
param_order(pingpong) -> [{pairs, 1000}, {rounds, 10000}];
param_order(fanin) -> [{producers, 2}, {messages, 5000000}];
param_order(Savina) -> krill_savina:param_order(Savina).

%% The Savina set lives in krill_savina; its names are atoms like 'sv-fib'.
savina_bench(Name) ->
    Bench = list_to_atom(Name),
    try krill_savina:param_order(Bench) of
        _ -> Bench
    catch error:function_clause -> throw({usage, "unknown benchmark: " ++ Name})
    end.

parse_opts([], Opts) -> Opts;
parse_opts(["--" ++ Opt | Rest], Opts) ->
    {Name, Value, Rest2} =
        case string:split(Opt, "=") of
            [N, V] -> {N, V, Rest};
            [N] ->
                case Rest of
                    [V | R] -> {N, V, R};
                    [] -> throw({usage, "option --" ++ N ++ " needs a value"})
                end
        end,
    Key = try list_to_existing_atom(Name)
          catch error:badarg -> throw({usage, "unknown option --" ++ Name})
          end,
    case maps:is_key(Key, Opts) of
        true -> ok;
        false -> throw({usage, "unknown option --" ++ Name ++ " for this benchmark"})
    end,
    Int = try list_to_integer(Value)
          catch error:badarg -> throw({usage, "--" ++ Name ++ ": not an integer: " ++ Value})
          end,
    parse_opts(Rest2, Opts#{Key => Int});
parse_opts([Arg | _], _) ->
    throw({usage, "unexpected argument: " ++ Arg}).

%% ./run starts the VM with +S N:N already; this also makes a bare `erl -run`
%% honour --schedulers (it can lower the count, not raise it above +S).
set_schedulers(undefined) -> ok;
set_schedulers(N) when N >= 1 ->
    Max = erlang:system_info(schedulers),
    case N =< Max of
        true -> erlang:system_flag(schedulers_online, N), ok;
        false ->
            io:format(standard_error,
                      "krill_bench: only ~b schedulers in this VM (start erl with +S ~b:~b)~n",
                      [Max, N, N]),
            erlang:system_flag(schedulers_online, Max), ok
    end;
set_schedulers(_) -> throw({usage, "--schedulers must be >= 1"}).

%% ------------------------------------------------------------ benchmarks ---
%% Each returns {Seconds, Rate, Extras, Ok}.

%% spawn: N processes, each holding 8 bytes of state (a small integer, one
%% machine word on the process heap) and blocked in receive; then each is
%% sent a message telling it to exit.
bench(spawn, #{procs := N}) ->
    Parent = self(),
    erlang:garbage_collect(),
    Rss0 = rss_bytes(),
    T0 = now_ns(),
    Pids = spawn_holders(N, Parent, []),
    T1 = now_ns(),
    %% Not timed: let every new process run up to its receive (so its stack
    %% and heap are really in use) before sampling memory at the peak.
    wait_run_queues_empty(),
    Rss1 = rss_bytes(),
    T2 = now_ns(),
    lists:foreach(fun(P) -> P ! stop end, Pids),
    wait_n(N),
    T3 = now_ns(),
    SpawnS = secs(T1 - T0),
    ExitS = secs(T3 - T2),
    %% Memory per process is the growth of the OS resident set size
    %% (VmRSS of the emulator, /proc/self/status) divided by N, the same
    %% measure krill-bench uses, rather than erlang:memory(), so the figures
    %% are comparable across implementations. It includes the parent's list
    %% of N pids (two words per process).
    BytesPerProc = (Rss1 - Rss0) / N,
    {SpawnS, N / SpawnS,
     [{spawn_rate, N / SpawnS}, {exit_rate, N / ExitS},
      {spawn_seconds, SpawnS}, {exit_seconds, ExitS},
      {bytes_per_proc, round1(BytesPerProc)},
      {rss_before_bytes, Rss0}, {rss_peak_bytes, Rss1}],
     true};

%% ring: N processes in a ring, each knowing the next; a token carrying the
%% number of hops left goes round M times (N*M hops).
bench(ring, #{procs := N, laps := M}) ->
    Parent = self(),
    Hops = N * M,
    TS = now_ns(),
    Head = spawn(fun() -> receive {next, Next} -> ring_node(Next, Parent) end end),
    Last = lists:foldl(fun(_, Prev) -> spawn(fun() -> ring_node(Prev, Parent) end) end,
                       Head, lists:seq(2, N)),
    Head ! {next, Last},
    T0 = now_ns(),
    Head ! {token, Hops},
    receive ring_done -> ok end,
    T1 = now_ns(),
    Head ! stop,
    S = secs(T1 - T0),
    {S, Hops / S, [{hops, Hops}, {setup_seconds, secs(T0 - TS)}], true};

%% skynet: a tree of processes with the given fanout; each leaf sends its
%% ordinal to its parent, each inner node sends the sum of its children.
bench(skynet, #{leaves := Leaves, fanout := Fanout}) when Fanout >= 2 ->
    Parent = self(),
    T0 = now_ns(),
    spawn(fun() -> skynet(Parent, 0, Leaves, Fanout) end),
    Result = receive R when is_integer(R) -> R end,
    T1 = now_ns(),
    S = secs(T1 - T0),
    Procs = skynet_count(Leaves, Fanout),
    Expected = Leaves * (Leaves - 1) div 2,
    Ok = Result =:= Expected,
    {S, Procs / S,
     [{result, Result}, {expected, Expected}, {ok, Ok}, {processes, Procs}],
     Ok};
bench(skynet, _) ->
    throw({usage, "--fanout must be >= 2"});

%% pingpong: P independent pairs; in each, ping sends to pong and waits for
%% the reply, K round trips (2*P*K messages in all).
bench(pingpong, #{pairs := P, rounds := K}) ->
    Parent = self(),
    Pings = [begin
                 Pong = spawn(fun pong/0),
                 spawn(fun() -> receive go -> ok end, ping(Pong, self(), K), Parent ! pair_done end)
             end || _ <- lists:seq(1, P)],
    T0 = now_ns(),
    lists:foreach(fun(Ping) -> Ping ! go end, Pings),
    wait_pair_done(P),
    T1 = now_ns(),
    S = secs(T1 - T0),
    Msgs = 2 * P * K,
    {S, Msgs / S, [{messages_total, Msgs}], true};

%% fanin: P producers each send K messages to one consumer, which counts
%% them (P*K messages in all).
bench(fanin, #{producers := P, messages := K}) ->
    Parent = self(),
    Total = P * K,
    Consumer = spawn(fun() -> consume(Total, Parent) end),
    Producers = [spawn(fun() -> receive go -> ok end, produce(Consumer, K) end)
                 || _ <- lists:seq(1, P)],
    T0 = now_ns(),
    lists:foreach(fun(Pr) -> Pr ! go end, Producers),
    receive fanin_done -> ok end,
    T1 = now_ns(),
    S = secs(T1 - T0),
    {S, Total / S, [{messages_total, Total}], true};

%% The Savina set (krill_savina.erl).
bench(Savina, Params) ->
    krill_savina:bench(Savina, Params).

%% ------------------------------------------------------------- processes ---

spawn_holders(0, _Parent, Acc) -> Acc;
spawn_holders(I, Parent, Acc) ->
    Pid = spawn(fun() -> hold(I, Parent) end),
    spawn_holders(I - 1, Parent, [Pid | Acc]).

hold(State, Parent) ->
    receive
        stop -> Parent ! done, State
    end.

wait_n(0) -> ok;
wait_n(N) -> receive done -> wait_n(N - 1) end.

ring_node(Next, Parent) ->
    receive
        {token, 0} -> Parent ! ring_done, ring_node(Next, Parent);
        {token, K} -> Next ! {token, K - 1}, ring_node(Next, Parent);
        stop -> Next ! stop
    end.

skynet(Parent, Num, 1, _Fanout) ->
    Parent ! Num;
skynet(Parent, Num, Size, Fanout) ->
    Self = self(),
    Children = min(Fanout, Size),
    skynet_spawn(Self, Num, Size div Children, Size rem Children, Children, Fanout),
    Parent ! skynet_collect(Children, 0).

%% Children is split as evenly as possible: the first Rem get Base+1 leaves.
skynet_spawn(_Self, _Num, _Base, _Rem, 0, _Fanout) -> ok;
skynet_spawn(Self, Num, Base, Rem, Left, Fanout) ->
    Size = case Rem > 0 of true -> Base + 1; false -> Base end,
    spawn(fun() -> skynet(Self, Num, Size, Fanout) end),
    skynet_spawn(Self, Num + Size, Base, Rem - 1, Left - 1, Fanout).

skynet_collect(0, Sum) -> Sum;
skynet_collect(N, Sum) -> receive X -> skynet_collect(N - 1, Sum + X) end.

%% Number of processes in the tree (root included), computed outside timing.
skynet_count(1, _Fanout) -> 1;
skynet_count(Size, Fanout) ->
    Children = min(Fanout, Size),
    Base = Size div Children,
    Rem = Size rem Children,
    Big = case Rem of 0 -> 0; _ -> Rem * skynet_count(Base + 1, Fanout) end,
    1 + Big + (Children - Rem) * skynet_count(Base, Fanout).

ping(Pong, _Self, 0) -> Pong ! stop;
ping(Pong, Self, K) ->
    Pong ! {ping, Self},
    receive pong -> ping(Pong, Self, K - 1) end.

pong() ->
    receive
        {ping, From} -> From ! pong, pong();
        stop -> ok
    end.

wait_pair_done(0) -> ok;
wait_pair_done(N) -> receive pair_done -> wait_pair_done(N - 1) end.

produce(_Consumer, 0) -> ok;
produce(Consumer, K) -> Consumer ! K, produce(Consumer, K - 1).

consume(0, Parent) -> Parent ! fanin_done;
consume(N, Parent) -> receive _ -> consume(N - 1, Parent) end.

%% --------------------------------------------------------------- helpers ---

now_ns() -> erlang:monotonic_time(nanosecond).

secs(Ns) -> max(Ns, 1) / 1.0e9.

round1(X) -> round(X * 10) / 10.

wait_run_queues_empty() ->
    case erlang:statistics(total_run_queue_lengths) of
        0 -> ok;
        _ -> timer:sleep(1), wait_run_queues_empty()
    end.

%% Resident set size of this OS process in bytes.
rss_bytes() ->
    {ok, Bin} = file:read_file("/proc/self/status"),
    [Line] = [L || L <- binary:split(Bin, <<"\n">>, [global]),
                   binary:part(L, 0, min(6, byte_size(L))) =:= <<"VmRSS:">>],
    [_, Kb | _] = binary:split(Line, [<<" ">>, <<"\t">>], [global, trim_all]),
    binary_to_integer(Kb) * 1024.

%% Minimal JSON for a flat list of {Key, Value}, keeping the order.
json(Pairs) ->
    ["{", lists:join(",", [[json_str(atom_to_list(K)), ":", json_val(V)] || {K, V} <- Pairs]), "}"].

json_val(true) -> "true";
json_val(false) -> "false";
json_val(V) when is_integer(V) -> integer_to_list(V);
json_val(V) when is_float(V) -> float_to_list(V, [short]);
json_val(V) when is_list(V) -> json_str(V).

json_str(S) ->
    [$", [case C of $" -> "\\\""; $\\ -> "\\\\"; _ -> C end || C <- S], $"].
