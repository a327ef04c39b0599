using System.Globalization;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json.Nodes;
using Fieldline.Mqtt.Server;
using Fieldline.Tests.Infrastructure;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;

namespace Fieldline.Tests.Broker;

/// <summary>MQTT over TLS on its own listener: the development certificate, configured certificates, and devices that log in with a client certificate.</summary>
public sealed class MqttTlsTests
{
    private const string Telemetry = "{\"type\":\"temperature\",\"value\":21.5,\"timestamp\":1750000000}";

    [Fact]
    public async Task Mosquitto_pub_and_sub_over_TLS_trust_the_generated_development_certificate_with_cafile()
    {
        await using var environment = await TestEnvironment.StartAsync();
        var token = (await environment.RegisterAsync("dev-1"))["token"]!.GetValue<string>();
        var caFile = DevelopmentCertificatePath(environment);
        Assert.True(File.Exists(caFile), $"expected the development certificate at {caFile}");

        using var subscriber = ExternalProcess.Start("mosquitto_sub", [.. Tls(environment, caFile), "-i", "operator", "-u", "$admin", "-P", TestEnvironment.AdminKey, "-t", "sensor/dev-1/telemetry", "-C", "1", "-W", "20"]);
        await Poll.UntilAsync(() => Task.FromResult(environment.GetService<MqttBroker>().SubscriptionCount), c => c >= 1, "the operator's subscription over TLS");
        var publish = await ExternalProcess.RunAsync("mosquitto_pub", [.. Tls(environment, caFile), "-q", "1", "-i", "dev-1", "-u", "dev-1", "-P", token, "-t", "sensor/dev-1/telemetry", "-m", Telemetry]);

        Assert.True(publish.ExitCode == 0, publish.ToString());
        var received = await subscriber.StandardOutput.ReadToEndAsync();
        await subscriber.WaitForExitAsync();
        Assert.Equal(Telemetry, received.Trim());
        var latest = await environment.Client.GetFromJsonAsync<JsonArray>("/api/v1/devices/dev-1/telemetry/latest");
        Assert.Equal(21.5, Assert.Single(latest!)!["value"]!.GetValue<double>());
    }

    [Fact]
    public async Task A_client_offering_the_ALPN_protocol_mqtt_is_served()
    {
        await using var environment = await TestEnvironment.StartAsync();
        var token = (await environment.RegisterAsync("dev-1"))["token"]!.GetValue<string>();

        var publish = await ExternalProcess.RunAsync("mosquitto_pub", [.. Tls(environment, DevelopmentCertificatePath(environment)), "--tls-alpn", "mqtt", "-q", "1", "-i", "dev-1", "-u", "dev-1", "-P", token, "-t", "sensor/dev-1/telemetry", "-m", Telemetry]);

        Assert.True(publish.ExitCode == 0, publish.ToString());
    }

    [Fact]
    public async Task The_development_certificate_is_made_once_with_an_owner_only_key_and_reused_on_the_next_start()
    {
        var dataDir = TestEnvironment.NewTempDirectory();
        try
        {
            string firstFingerprint;
            await using (var first = await TestEnvironment.StartAsync(dataDir: dataDir))
            {
                using var certificate = X509CertificateLoader.LoadCertificateFromFile(DevelopmentCertificatePath(first));
                firstFingerprint = certificate.GetCertHashString(HashAlgorithmName.SHA256);
                Assert.Equal("CN=localhost", certificate.Subject);
                var names = certificate.Extensions.OfType<X509SubjectAlternativeNameExtension>().Single();
                Assert.Equal(["localhost"], names.EnumerateDnsNames());
                Assert.Equal(["127.0.0.1", "::1"], names.EnumerateIPAddresses().Select(a => a.ToString()));
                Assert.InRange((certificate.NotAfter - certificate.NotBefore).TotalDays, 729, 731);
                Assert.Contains($"TLS development certificate (self-signed; clients trust it with --cafile): {DevelopmentCertificatePath(first)}", first.Banner, StringComparison.Ordinal);
                Assert.Contains($"TLS certificate SHA-256 fingerprint: {Colons(firstFingerprint)}", first.Banner, StringComparison.Ordinal);
                Assert.Contains($"MQTTS: mqtts://127.0.0.1:{first.Application.MqttTlsPort}", first.Banner, StringComparison.Ordinal);

                if (!OperatingSystem.IsWindows())
                {
                    var keyMode = File.GetUnixFileMode(Path.Combine(dataDir, "tls", "mqtt-dev-key.pem"));
                    Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, keyMode);
                }
            }

            await using var second = await TestEnvironment.StartAsync(dataDir: dataDir);
            using var reused = X509CertificateLoader.LoadCertificateFromFile(DevelopmentCertificatePath(second));
            Assert.Equal(firstFingerprint, reused.GetCertHashString(HashAlgorithmName.SHA256));
            Assert.Equal(firstFingerprint, await ServerCertificateFingerprintAsync(second));
            Assert.Contains(Colons(firstFingerprint), second.Banner, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dataDir, recursive: true);
        }
    }

    [Fact]
    public async Task A_configured_PEM_certificate_and_key_are_served_and_no_development_certificate_is_made()
    {
        var files = TestEnvironment.NewTempDirectory();
        try
        {
            using var authority = TestCertificates.Authority("Fieldline Test Server CA");
            using var server = TestCertificates.IssueServer(authority);
            var (certificatePath, keyPath) = TestCertificates.WritePem(server, files, "server");
            var (caPath, _) = TestCertificates.WritePem(authority, files, "ca");
            await using var environment = await TestEnvironment.StartAsync(configuration: new Dictionary<string, string?>
            {
                ["Mqtt:Tls:CertificatePath"] = certificatePath,
                ["Mqtt:Tls:KeyPath"] = keyPath,
            });
            var token = (await environment.RegisterAsync("dev-1"))["token"]!.GetValue<string>();

            var publish = await ExternalProcess.RunAsync("mosquitto_pub", [.. Tls(environment, caPath), "-q", "1", "-i", "dev-1", "-u", "dev-1", "-P", token, "-t", "sensor/dev-1/telemetry", "-m", Telemetry]);

            Assert.True(publish.ExitCode == 0, publish.ToString());
            Assert.Equal(server.GetCertHashString(HashAlgorithmName.SHA256), await ServerCertificateFingerprintAsync(environment));
            Assert.False(Directory.Exists(Path.Combine(environment.DataDir, "tls")), "no development certificate is made when one is configured");
            Assert.Contains($"TLS certificate: {certificatePath}", environment.Banner, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(files, recursive: true);
        }
    }

    [Fact]
    public async Task A_configured_PKCS12_file_is_served()
    {
        var files = TestEnvironment.NewTempDirectory();
        try
        {
            using var authority = TestCertificates.Authority("Fieldline Test Server CA");
            using var server = TestCertificates.IssueServer(authority);
            var pfxPath = Path.Combine(files, "server.pfx");
            await File.WriteAllBytesAsync(pfxPath, server.Export(X509ContentType.Pkcs12, "pfx-password"));
            await using var environment = await TestEnvironment.StartAsync(configuration: new Dictionary<string, string?>
            {
                ["Mqtt:Tls:CertificatePath"] = pfxPath,
                ["Mqtt:Tls:CertificatePassword"] = "pfx-password",
            });

            Assert.Equal(server.GetCertHashString(HashAlgorithmName.SHA256), await ServerCertificateFingerprintAsync(environment));
        }
        finally
        {
            Directory.Delete(files, recursive: true);
        }
    }

    [Fact]
    public async Task A_device_logs_in_with_a_client_certificate_whose_fingerprint_was_registered_through_the_API()
    {
        await using var environment = await TestEnvironment.StartAsync();
        using var certificate = TestCertificates.SelfSignedClient("my-sensor");
        using (var registration = await environment.Client.PostAsJsonAsync("/api/v1/devices", new { device_id = "dev-1", name = "Device dev-1", type = "sensor", certificate_fingerprint = TestCertificates.Fingerprint(certificate) }))
        {
            registration.EnsureSuccessStatusCode();
        }

        var (certificatePath, keyPath) = TestCertificates.WritePem(certificate, environment.DataDir, "device");
        var publish = await ExternalProcess.RunAsync("mosquitto_pub", [.. Tls(environment, DevelopmentCertificatePath(environment)), "--cert", certificatePath, "--key", keyPath, "-q", "1", "-i", "dev-1", "-t", "sensor/dev-1/telemetry", "-m", Telemetry]);
        Assert.True(publish.ExitCode == 0, publish.ToString());
        var latest = await environment.Client.GetFromJsonAsync<JsonArray>("/api/v1/devices/dev-1/telemetry/latest");
        Assert.Equal(21.5, Assert.Single(latest!)!["value"]!.GetValue<double>());

        // MQTTnet, with the device id as user name and no password; the device still reaches only its own topics.
        var (client, result) = await MqttTestClient.ConnectAsync(TlsOptions(environment, "dev-1", certificate, username: "dev-1"));
        using (client)
        {
            Assert.Equal(MqttClientConnectResultCode.Success, result);
            var own = await client.PublishAsync(new MqttApplicationMessageBuilder().WithTopic("device/dev-1/events").WithPayload("x").WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());
            var foreign = await client.PublishAsync(new MqttApplicationMessageBuilder().WithTopic("sensor/dev-2/telemetry").WithPayload(Telemetry).WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());
            Assert.Equal(MqttClientPublishReasonCode.Success, own.ReasonCode);
            Assert.Equal(MqttClientPublishReasonCode.NotAuthorized, foreign.ReasonCode);
            var device = await environment.Client.GetFromJsonAsync<JsonObject>("/api/v1/devices/dev-1");
            Assert.Equal(TestCertificates.Fingerprint(certificate), device!["certificate_fingerprint"]!.GetValue<string>());
        }
    }

    [Fact]
    public async Task An_unregistered_client_certificate_is_refused_with_0x86_on_5_and_not_authorised_on_3_1_1()
    {
        await using var environment = await TestEnvironment.StartAsync();
        using var registered = TestCertificates.SelfSignedClient("dev-1");
        using var stranger = TestCertificates.SelfSignedClient("dev-1");
        using (var registration = await environment.Client.PostAsJsonAsync("/api/v1/devices", new { device_id = "dev-1", name = "Device dev-1", type = "sensor", certificate_fingerprint = TestCertificates.Fingerprint(registered) }))
        {
            registration.EnsureSuccessStatusCode();
        }

        var (client, result) = await MqttTestClient.ConnectAsync(TlsOptions(environment, "dev-1", stranger));
        client.Dispose();
        var (certificatePath, keyPath) = TestCertificates.WritePem(stranger, environment.DataDir, "stranger");
        var publish = await ExternalProcess.RunAsync("mosquitto_pub", [.. Tls(environment, DevelopmentCertificatePath(environment)), "--cert", certificatePath, "--key", keyPath, "-V", "mqttv311", "-i", "dev-1", "-t", "sensor/dev-1/telemetry", "-m", Telemetry]);

        Assert.Equal(MqttClientConnectResultCode.BadUserNameOrPassword, result);
        Assert.NotEqual(0, publish.ExitCode);
        Assert.Contains("not authori", publish.Error + publish.Output, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task An_expired_client_certificate_is_refused_even_when_its_fingerprint_is_registered()
    {
        await using var environment = await TestEnvironment.StartAsync();
        using var expired = TestCertificates.SelfSignedClient("dev-1", expired: true);
        using (var registration = await environment.Client.PostAsJsonAsync("/api/v1/devices", new { device_id = "dev-1", name = "Device dev-1", type = "sensor", certificate_fingerprint = TestCertificates.Fingerprint(expired) }))
        {
            registration.EnsureSuccessStatusCode();
        }

        var (client, result) = await MqttTestClient.ConnectAsync(TlsOptions(environment, "dev-1", expired));
        client.Dispose();

        Assert.Equal(MqttClientConnectResultCode.BadUserNameOrPassword, result);
    }

    [Fact]
    public async Task A_registered_client_certificate_with_another_devices_user_name_is_refused()
    {
        await using var environment = await TestEnvironment.StartAsync();
        using var certificate = TestCertificates.SelfSignedClient("dev-1");
        using (var registration = await environment.Client.PostAsJsonAsync("/api/v1/devices", new { device_id = "dev-1", name = "Device dev-1", type = "sensor", certificate_fingerprint = TestCertificates.Fingerprint(certificate) }))
        {
            registration.EnsureSuccessStatusCode();
        }

        await environment.RegisterAsync("dev-2");

        var (client, result) = await MqttTestClient.ConnectAsync(TlsOptions(environment, "dev-2", certificate, username: "dev-2"));
        client.Dispose();

        Assert.Equal(MqttClientConnectResultCode.BadUserNameOrPassword, result);
    }

    [Fact]
    public async Task Devices_logged_in_by_certificate_without_a_user_name_cannot_take_over_each_others_sessions()
    {
        await using var environment = await TestEnvironment.StartAsync();
        using var first = TestCertificates.SelfSignedClient("first");
        using var second = TestCertificates.SelfSignedClient("second");
        foreach (var (id, certificate) in new[] { ("dev-1", first), ("dev-2", second) })
        {
            using var registration = await environment.Client.PostAsJsonAsync("/api/v1/devices", new { device_id = id, name = id, type = "sensor", certificate_fingerprint = TestCertificates.Fingerprint(certificate) });
            registration.EnsureSuccessStatusCode();
        }

        var (victim, victimResult) = await MqttTestClient.ConnectAsync(TlsOptions(environment, "shared-id", first));
        using var _victim = victim;
        var (thief, thiefResult) = await MqttTestClient.ConnectAsync(TlsOptions(environment, "shared-id", second));
        thief.Dispose();

        Assert.Equal(MqttClientConnectResultCode.Success, victimResult);
        Assert.Equal(MqttClientConnectResultCode.NotAuthorized, thiefResult);
        await victim.PingAsync().WaitAsync(TimeSpan.FromSeconds(10));
        Assert.True(victim.IsConnected, "the device whose client id was tried must stay connected");
    }

    [Fact]
    public async Task Changing_a_devices_fingerprint_closes_the_connection_made_with_the_old_certificate()
    {
        await using var environment = await TestEnvironment.StartAsync();
        using var old = TestCertificates.SelfSignedClient("old");
        using var replacement = TestCertificates.SelfSignedClient("new");
        using (var registration = await environment.Client.PostAsJsonAsync("/api/v1/devices", new { device_id = "dev-1", name = "Device dev-1", type = "sensor", certificate_fingerprint = TestCertificates.Fingerprint(old) }))
        {
            registration.EnsureSuccessStatusCode();
        }

        var (client, result) = await MqttTestClient.ConnectAsync(TlsOptions(environment, "dev-1", old));
        using var _client = client;
        Assert.Equal(MqttClientConnectResultCode.Success, result);
        var disconnected = new TaskCompletionSource<MqttClientDisconnectReason>(TaskCreationOptions.RunContinuationsAsynchronously);
        client.DisconnectedAsync += e =>
        {
            disconnected.TrySetResult(e.Reason);
            return Task.CompletedTask;
        };

        using (var patch = await environment.Client.PatchAsJsonAsync("/api/v1/devices/dev-1", new { certificate_fingerprint = TestCertificates.Fingerprint(replacement) }))
        {
            patch.EnsureSuccessStatusCode();
        }

        Assert.Equal(MqttClientDisconnectReason.NotAuthorized, await disconnected.Task.WaitAsync(TimeSpan.FromSeconds(10)));
        var (oldAgain, oldResult) = await MqttTestClient.ConnectAsync(TlsOptions(environment, "dev-1", old));
        oldAgain.Dispose();
        var (newClient, newResult) = await MqttTestClient.ConnectAsync(TlsOptions(environment, "dev-1", replacement));
        newClient.Dispose();
        Assert.Equal(MqttClientConnectResultCode.BadUserNameOrPassword, oldResult);
        Assert.Equal(MqttClientConnectResultCode.Success, newResult);
    }

    [Fact]
    public async Task Refused_client_certificates_count_against_the_device_like_wrong_tokens()
    {
        await using var environment = await TestEnvironment.StartAsync();
        var token = (await environment.RegisterAsync("dev-1"))["token"]!.GetValue<string>();
        using var stranger = TestCertificates.SelfSignedClient("dev-1");
        for (var i = 0; i < 10; i++)
        {
            var (refused, code) = await MqttTestClient.ConnectAsync(TlsOptions(environment, "dev-1", stranger, username: "dev-1"));
            refused.Dispose();
            Assert.Equal(MqttClientConnectResultCode.BadUserNameOrPassword, code);
        }

        var (client, result) = await MqttTestClient.ConnectAsync(MqttTestClient.Options(environment, "dev-1", "dev-1", token));
        client.Dispose();

        Assert.Equal(MqttClientConnectResultCode.ConnectionRateExceeded, result);
    }

    [Fact]
    public async Task A_certificate_from_the_configured_client_CA_logs_in_as_the_device_its_CN_names()
    {
        var files = TestEnvironment.NewTempDirectory();
        try
        {
            using var authority = TestCertificates.Authority("Fieldline Test Device CA");
            var (caPath, _) = TestCertificates.WritePem(authority, files, "device-ca");
            using var issued = TestCertificates.IssueClient(authority, "dev-7");
            using var forged = TestCertificates.SelfSignedClient("dev-7");
            await using var environment = await TestEnvironment.StartAsync(configuration: new Dictionary<string, string?> { ["Mqtt:Tls:ClientCaPath"] = caPath });
            await environment.RegisterAsync("dev-7");

            var (certificatePath, keyPath) = TestCertificates.WritePem(issued, files, "dev-7");
            var publish = await ExternalProcess.RunAsync("mosquitto_pub", [.. Tls(environment, DevelopmentCertificatePath(environment)), "--cert", certificatePath, "--key", keyPath, "-q", "1", "-i", "dev-7", "-t", "sensor/dev-7/telemetry", "-m", Telemetry]);
            var (client, issuedResult) = await MqttTestClient.ConnectAsync(TlsOptions(environment, "dev-7-b", issued));
            client.Dispose();
            var (forgedClient, forgedResult) = await MqttTestClient.ConnectAsync(TlsOptions(environment, "dev-7-c", forged));
            forgedClient.Dispose();

            Assert.True(publish.ExitCode == 0, publish.ToString());
            Assert.Equal(MqttClientConnectResultCode.Success, issuedResult);
            Assert.Equal(MqttClientConnectResultCode.BadUserNameOrPassword, forgedResult);
            var latest = await environment.Client.GetFromJsonAsync<JsonArray>("/api/v1/devices/dev-7/telemetry/latest");
            Assert.Single(latest!);
        }
        finally
        {
            Directory.Delete(files, recursive: true);
        }
    }

    [Fact]
    public async Task Without_a_client_CA_the_CN_of_a_certificate_identifies_nobody()
    {
        await using var environment = await TestEnvironment.StartAsync();
        await environment.RegisterAsync("dev-7");
        using var authority = TestCertificates.Authority("Fieldline Test Device CA");
        using var issued = TestCertificates.IssueClient(authority, "dev-7");

        var (client, result) = await MqttTestClient.ConnectAsync(TlsOptions(environment, "dev-7", issued));
        client.Dispose();

        Assert.Equal(MqttClientConnectResultCode.BadUserNameOrPassword, result);
    }

    [Fact]
    public async Task Over_TLS_a_device_still_logs_in_with_its_token_and_without_a_certificate()
    {
        await using var environment = await TestEnvironment.StartAsync();
        var token = (await environment.RegisterAsync("dev-1"))["token"]!.GetValue<string>();

        var (client, result) = await MqttTestClient.ConnectAsync(TlsOptions(environment, "dev-1", certificate: null, username: "dev-1", password: token, version: MqttProtocolVersion.V311));
        client.Dispose();
        var (anonymous, anonymousResult) = await MqttTestClient.ConnectAsync(TlsOptions(environment, "nobody", certificate: null));
        anonymous.Dispose();

        Assert.Equal(MqttClientConnectResultCode.Success, result);
        Assert.Equal(MqttClientConnectResultCode.NotAuthorized, anonymousResult);
    }

    [Fact]
    public async Task With_TLS_disabled_there_is_no_TLS_listener_and_no_certificate()
    {
        await using var environment = await TestEnvironment.StartAsync(configuration: new Dictionary<string, string?> { ["Mqtt:Tls:Enabled"] = "false" });

        Assert.Null(environment.Application.MqttTlsPort);
        Assert.DoesNotContain("MQTTS", environment.Banner, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(environment.DataDir, "tls")), "no development certificate without TLS");
    }

    internal static string DevelopmentCertificatePath(TestEnvironment environment) => Path.Combine(environment.DataDir, "tls", "mqtt-dev-cert.pem");

    private static string[] Tls(TestEnvironment environment, string caFile) =>
        ["-h", "127.0.0.1", "-p", environment.Application.MqttTlsPort!.Value.ToString(CultureInfo.InvariantCulture), "--cafile", caFile];

    private static string Colons(string hex) => string.Join(':', hex.Chunk(2).Select(pair => new string(pair)));

    /// <summary>MQTTnet over TLS trusting exactly the certificate the host serves, optionally presenting a client certificate.</summary>
    private static MqttClientOptions TlsOptions(TestEnvironment environment, string clientId, X509Certificate2? certificate, string? username = null, string? password = null, MqttProtocolVersion version = MqttProtocolVersion.V500)
    {
        var served = environment.Application.TlsCertificates!.ServerCertificate.GetCertHashString(HashAlgorithmName.SHA256);
        var builder = new MqttClientOptionsBuilder()
            .WithTcpServer("127.0.0.1", environment.Application.MqttTlsPort!.Value)
            .WithClientId(clientId)
            .WithProtocolVersion(version)
            .WithTimeout(TimeSpan.FromSeconds(10))
            .WithTlsOptions(tls =>
            {
                tls.UseTls()
                    .WithCertificateValidationHandler(e => e.Certificate?.GetCertHashString(HashAlgorithmName.SHA256) == served);
                if (certificate is not null)
                {
                    tls.WithClientCertificates([certificate]);
                }
            });
        if (username is not null)
        {
            builder.WithCredentials(username, password);
        }

        return builder.Build();
    }

    /// <summary>The fingerprint of the certificate a TLS client is shown, read from a real handshake.</summary>
    private static async Task<string> ServerCertificateFingerprintAsync(TestEnvironment environment)
    {
        using var tcp = new System.Net.Sockets.TcpClient();
        await tcp.ConnectAsync("127.0.0.1", environment.Application.MqttTlsPort!.Value);
        string? fingerprint = null;
        await using var ssl = new System.Net.Security.SslStream(tcp.GetStream(), leaveInnerStreamOpen: false, (_, presented, _, _) =>
        {
            fingerprint = presented?.GetCertHashString(HashAlgorithmName.SHA256);
            return presented is not null;
        });
        await ssl.AuthenticateAsClientAsync("localhost");
        return fingerprint ?? throw new Xunit.Sdk.XunitException("The server presented no certificate.");
    }
}
