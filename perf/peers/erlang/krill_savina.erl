%% krill_savina: the Savina actor benchmarks (Imam & Sarkar, AGERE! 2014)
%% in idiomatic Erlang/OTP, peers of perf/bench/savina: one process per
%% actor, plain messages and receive (selective where the protocol needs it),
%% the same parameters and the same checks on results.
%%
%% Run through krill_bench (./run sv-pingpong ...), which parses the options
%% with param_order/1 and prints the line bench/2 returns.
-module(krill_savina).
-export([param_order/1, bench/2]).

%% Keys of sv-concdict (the map starts with the lower half), and each bank
%% account's opening balance.
-define(KEYS, 65536).
-define(START_BALANCE, 1000000).

%% Parameters in JSON order, with krill-savina's defaults.
param_order('sv-pingpong') -> [{pings, 1000000}];
param_order('sv-count') -> [{messages, 10000000}];
param_order('sv-fjcreate') -> [{actors, 1000000}];
param_order('sv-fjthroughput') -> [{actors, 60}, {messages, 50000}];
param_order('sv-threadring') -> [{actors, 100}, {hops, 5000000}];
param_order('sv-chameneos') -> [{chameneos, 100}, {meetings, 1000000}];
param_order('sv-big') -> [{actors, 120}, {pings, 20000}];
param_order('sv-concdict') -> [{workers, 20}, {messages, 50000}, {writes, 10}];
param_order('sv-fib') -> [{n, 30}];
param_order('sv-bank') -> [{accounts, 1000}, {transactions, 500000}, {window, 1000}].

%% Each returns {Seconds, Rate, Extras, Ok}, as krill_bench:bench/2 does.

%% One pair: ping sends {ping, From} and waits for pong, N times.
bench('sv-pingpong', #{pings := N}) ->
    Parent = self(),
    Pong = spawn(fun() -> pong(0) end),
    spawn(fun() ->
                  T0 = now_ns(),
                  Got = ping(Pong, N, 0),
                  T1 = now_ns(),
                  Pong ! {stop, Parent},
                  Parent ! {ping_done, Got, T1 - T0}
          end),
    {Got, Ns} = receive {ping_done, G, D} -> {G, D} end,
    Seen = receive {pong_seen, S} -> S end,
    checked(Ns, 2 * N, Got =:= N andalso Seen =:= N,
            [{messages_total, 2 * N}, {result, Got}, {expected, N}]);

%% A producer sends N increments to a counter, then asks for the total.
bench('sv-count', #{messages := N}) ->
    Parent = self(),
    Counter = spawn(fun() -> counter(0) end),
    spawn(fun() ->
                  T0 = now_ns(),
                  produce(Counter, N),
                  Counter ! {get, self()},
                  receive {count, C} -> Parent ! {count_done, C, now_ns() - T0} end
          end),
    receive
        {count_done, Total, Ns} ->
            checked(Ns, N, Total =:= N, [{result, Total}, {expected, N}])
    end;

%% N processes, each created and sent one message; each computes, reports
%% and ends.
bench('sv-fjcreate', #{actors := N}) ->
    Self = self(),
    T0 = now_ns(),
    fjc_spawn(Self, N),
    Good = collect_true(N, 0),
    checked(now_ns() - T0, N, Good =:= N, [{result, Good}, {expected, N}]);

%% M messages to each of A workers, round robin; each reports after M.
bench('sv-fjthroughput', #{actors := A, messages := M}) ->
    Self = self(),
    Workers = list_to_tuple([spawn(fun() -> fjt_worker(M, 0, Self) end)
                             || _ <- lists:seq(1, A)]),
    Total = A * M,
    T0 = now_ns(),
    fjt_send(Workers, A, 0, Total),
    Processed = lists:sum([receive {fjt_done, Ok} -> Ok end || _ <- lists:seq(1, A)]),
    checked(now_ns() - T0, Total, Processed =:= Total,
            [{result, Processed}, {expected, Total}]);

%% A ring passes a token carrying the hops left; whoever gets 0 reports
%% its index, which must be H rem A.
bench('sv-threadring', #{actors := A, hops := H}) ->
    Parent = self(),
    Head = spawn(fun() -> receive {next, Next} -> tr_node(0, Next, Parent) end end),
    Second = lists:foldl(fun(I, Next) -> spawn(fun() -> tr_node(I, Next, Parent) end) end,
                         Head, lists:seq(A - 1, 1, -1)),
    Head ! {next, Second},
    T0 = now_ns(),
    Head ! {token, H},
    receive
        {tr_end, Index} ->
            checked(now_ns() - T0, H, Index =:= H rem A,
                    [{result, Index}, {expected, H rem A}])
    end;

%% This process is the mall; after N meetings it answers every request with
%% stop, and the creatures' meeting counts must add up to 2N.
bench('sv-chameneos', #{chameneos := C, meetings := N}) ->
    Mall = self(),
    T0 = now_ns(),
    [spawn(fun() -> chameneo(Mall, I rem 3, 0) end) || I <- lists:seq(0, C - 1)],
    Sum = mall(N, none, C, 0),
    checked(now_ns() - T0, N, Sum =:= 2 * N, [{result, Sum}, {expected, 2 * N}]);

%% A workers send P pings each, one at a time, to random others, which
%% answer pong; the pings answered must add up to A*P.
bench('sv-big', #{actors := A, pings := P}) ->
    Sink = self(),
    Workers = [spawn(fun() -> big_init(I, Sink, P) end) || I <- lists:seq(1, A)],
    Peers = list_to_tuple(Workers),
    [W ! {peers, Peers} || W <- Workers],
    T0 = now_ns(),
    [W ! go || W <- Workers],
    [receive big_done -> ok end || _ <- Workers],
    Ns = now_ns() - T0,
    [W ! stop || W <- Workers],
    Answered = lists:sum([receive {answered, K} -> K end || _ <- Workers]),
    Total = A * P,
    checked(Ns, 2 * Total, Answered =:= Total,
            [{messages_total, 2 * Total}, {result, Answered}, {expected, Total}]);

%% One process owns a map; W workers make M requests each, Writes% writes,
%% waiting for each answer. A value always encodes its key
%% (Value rem ?KEYS =:= Key), which every read checks.
bench('sv-concdict', #{workers := W, messages := M, writes := Writes}) when Writes =< 100 ->
    Self = self(),
    Initial = maps:from_list([{K, K} || K <- lists:seq(0, ?KEYS div 2 - 1)]),
    Dict = spawn(fun() -> dict(Initial) end),
    T0 = now_ns(),
    [spawn(fun() -> dict_worker(Dict, Self, I, M, Writes) end) || I <- lists:seq(1, W)],
    Bad = lists:sum([receive {dict_done, B} -> B end || _ <- lists:seq(1, W)]),
    Ns = now_ns() - T0,
    Dict ! {stop, Self},
    Size = receive {dict_size, S} -> S end,
    checked(Ns, W * M, Bad =:= 0 andalso Size >= ?KEYS div 2 andalso Size =< ?KEYS,
            [{keys, ?KEYS}, {map_size, Size}, {bad_reads, Bad}]);
bench('sv-concdict', _) ->
    throw({usage, "--writes must be a percentage"});

%% fib(N) by a process per call: 2 fib(N) - 1 processes.
bench('sv-fib', #{n := N}) when N =< 40 ->
    Self = self(),
    Expected = fib_iter(N),
    T0 = now_ns(),
    spawn(fun() -> fib(Self, N) end),
    receive
        {fib, R} ->
            checked(now_ns() - T0, 2 * Expected - 1, R =:= Expected,
                    [{processes, 2 * Expected - 1}, {result, R}, {expected, Expected}])
    end;
bench('sv-fib', _) ->
    throw({usage, "--n must be <= 40"});

%% This process is the teller: it asks a random account to transfer to
%% another, at most Window outstanding; the source credits the destination
%% and waits for its ack (a selective receive) before it replies. The total
%% balance must not change.
bench('sv-bank', #{accounts := A, transactions := N, window := Window}) when A >= 2 ->
    Teller = self(),
    Accounts = list_to_tuple([spawn(fun() -> account(?START_BALANCE, Teller) end)
                              || _ <- lists:seq(1, A)]),
    rand:seed(exsss, {1, 2, 3}),
    T0 = now_ns(),
    Sent = lists:min([Window, N]),
    [transfer(Accounts, A) || _ <- lists:seq(1, Sent)],
    teller(Accounts, A, Sent, 0, N),
    Ns = now_ns() - T0,
    [P ! stop || P <- tuple_to_list(Accounts)],
    Total = lists:sum([receive {balance, B} -> B end || _ <- lists:seq(1, A)]),
    checked(Ns, N, Total =:= A * ?START_BALANCE,
            [{result, Total}, {expected, A * ?START_BALANCE}]);
bench('sv-bank', _) ->
    throw({usage, "--accounts must be >= 2"}).

%% ------------------------------------------------------------- processes ---

ping(_Pong, 0, Got) -> Got;
ping(Pong, N, Got) ->
    Pong ! {ping, self()},
    receive pong -> ping(Pong, N - 1, Got + 1) end.

pong(Seen) ->
    receive
        {ping, From} -> From ! pong, pong(Seen + 1);
        {stop, Parent} -> Parent ! {pong_seen, Seen}
    end.

counter(N) ->
    receive
        inc -> counter(N + 1);
        {get, From} -> From ! {count, N}
    end.

produce(_Counter, 0) -> ok;
produce(Counter, N) -> Counter ! inc, produce(Counter, N - 1).

fjc_spawn(_Coord, 0) -> ok;
fjc_spawn(Coord, I) ->
    Pid = spawn(fun() -> receive {work, Theta} -> Coord ! {fjc_done, compute(Theta)} end end),
    Pid ! {work, float(I)},
    fjc_spawn(Coord, I - 1).

collect_true(0, Good) -> Good;
collect_true(N, Good) ->
    receive
        {fjc_done, true} -> collect_true(N - 1, Good + 1);
        {fjc_done, false} -> collect_true(N - 1, Good)
    end.

fjt_worker(0, Ok, Parent) -> Parent ! {fjt_done, Ok};
fjt_worker(M, Ok, Parent) ->
    receive
        {work, Theta} ->
            fjt_worker(M - 1, case compute(Theta) of true -> Ok + 1; false -> Ok end, Parent)
    end.

fjt_send(_Workers, _A, Total, Total) -> ok;
fjt_send(Workers, A, I, Total) ->
    element(I rem A + 1, Workers) ! {work, float(I)},
    fjt_send(Workers, A, I + 1, Total).

tr_node(Index, Next, Parent) ->
    receive
        {token, 0} -> Parent ! {tr_end, Index}, Next ! stop;
        {token, K} -> Next ! {token, K - 1}, tr_node(Index, Next, Parent);
        stop -> Next ! stop
    end.

mall(Left, Waiting, Live, Sum) ->
    receive
        {meet, From, _Colour} when Left =:= 0 ->
            From ! stop,
            mall(Left, Waiting, Live, Sum);
        {meet, From, Colour} when Waiting =:= none ->
            mall(Left, {From, Colour}, Live, Sum);
        {meet, From, Colour} ->
            {Held, _} = Waiting,
            Held ! {meet, From, Colour},
            mall(Left - 1, none, Live, Sum);
        {count, N} when Live =:= 1 ->
            Sum + N;
        {count, N} ->
            mall(Left, Waiting, Live - 1, Sum + N)
    end.

chameneo(Mall, Colour, Meetings) ->
    Mall ! {meet, self(), Colour},
    receive
        {meet, Partner, Other} ->
            New = complement(Colour, Other),
            Partner ! {change, New},
            chameneo(Mall, New, Meetings + 1);
        {change, New} ->
            chameneo(Mall, New, Meetings + 1);
        stop ->
            Mall ! {count, Meetings}
    end.

complement(C, C) -> C;
complement(A, B) -> 3 - A - B.

big_init(Index, Sink, P) ->
    rand:seed(exsss, {Index, Index, Index}),
    receive {peers, Peers} -> ok end,
    receive go -> ok end,
    big_ping(Index, Peers),
    big_worker(Index, Peers, Sink, P, 0).

big_worker(Index, Peers, Sink, Left, Answered) ->
    receive
        {ping, From} ->
            From ! pong,
            big_worker(Index, Peers, Sink, Left, Answered + 1);
        pong when Left =:= 1 ->
            Sink ! big_done,
            big_worker(Index, Peers, Sink, 0, Answered);
        pong ->
            big_ping(Index, Peers),
            big_worker(Index, Peers, Sink, Left - 1, Answered);
        stop ->
            Sink ! {answered, Answered}
    end.

%% A random peer other than Index (1-based).
big_ping(Index, Peers) ->
    K = rand:uniform(tuple_size(Peers) - 1),
    To = case K >= Index of true -> K + 1; false -> K end,
    element(To, Peers) ! {ping, self()}.

dict(Map) ->
    receive
        {write, From, Key, Value} -> From ! {value, Value}, dict(Map#{Key => Value});
        {read, From, Key} -> From ! {value, maps:get(Key, Map, none)}, dict(Map);
        {stop, From} -> From ! {dict_size, map_size(Map)}
    end.

dict_worker(Dict, Parent, Index, M, Writes) ->
    rand:seed(exsss, {Index, Index, Index}),
    Parent ! {dict_done, dict_requests(Dict, M, Writes, 0)}.

dict_requests(_Dict, 0, _Writes, Bad) -> Bad;
dict_requests(Dict, M, Writes, Bad) ->
    Key = rand:uniform(?KEYS) - 1,
    case rand:uniform(100) =< Writes of
        true -> Dict ! {write, self(), Key, Key + ?KEYS * rand:uniform(1 bsl 40)};
        false -> Dict ! {read, self(), Key}
    end,
    receive
        {value, V} when V =:= none; V rem ?KEYS =:= Key ->
            dict_requests(Dict, M - 1, Writes, Bad);
        {value, _} ->
            dict_requests(Dict, M - 1, Writes, Bad + 1)
    end.

fib(Parent, N) when N =< 2 -> Parent ! {fib, 1};
fib(Parent, N) ->
    Self = self(),
    spawn(fun() -> fib(Self, N - 1) end),
    spawn(fun() -> fib(Self, N - 2) end),
    receive {fib, A} -> receive {fib, B} -> Parent ! {fib, A + B} end end.

fib_iter(N) -> fib_iter(N, 1, 1).
fib_iter(N, A, _B) when N =< 1 -> A;
fib_iter(2, _A, B) -> B;
fib_iter(N, A, B) -> fib_iter(N - 1, B, A + B).

teller(_Accounts, _A, _Sent, Done, Done) -> ok;
teller(Accounts, A, Sent, Done, N) ->
    receive
        reply when Sent < N ->
            transfer(Accounts, A),
            teller(Accounts, A, Sent + 1, Done + 1, N);
        reply ->
            teller(Accounts, A, Sent, Done + 1, N)
    end.

transfer(Accounts, A) ->
    Src = rand:uniform(A),
    D = rand:uniform(A - 1),
    Dest = case D >= Src of true -> D + 1; false -> D end,
    element(Src, Accounts) ! {transfer, element(Dest, Accounts), rand:uniform(1000)}.

account(Balance, Teller) ->
    receive
        {transfer, Dest, Amount} ->
            Dest ! {credit, self(), Amount},
            account_waiting(Balance - Amount, Teller);
        {credit, From, Amount} ->
            From ! ack,
            account(Balance + Amount, Teller);
        stop ->
            Teller ! {balance, Balance}
    end.

%% Waiting for the destination's ack: take credits (two accounts crediting
%% each other would deadlock otherwise), leave new transfers in the mailbox.
account_waiting(Balance, Teller) ->
    receive
        ack ->
            Teller ! reply,
            account(Balance, Teller);
        {credit, From, Amount} ->
            From ! ack,
            account_waiting(Balance + Amount, Teller)
    end.

%% --------------------------------------------------------------- helpers ---

compute(Theta) ->
    S = math:sin(Theta),
    R = S * S,
    R >= 0.0 andalso R =< 1.0.

now_ns() -> erlang:monotonic_time(nanosecond).

checked(Ns, Ops, Ok, Extras) ->
    S = max(Ns, 1) / 1.0e9,
    {S, Ops / S, Extras ++ [{ok, Ok}], Ok}.
